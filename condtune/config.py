"""Typed dataclass configs, loaded from YAML and overridable from the command line.

Every recipe declares one ``@dataclass`` whose fields (with docstring comments) are its
configuration. :func:`parse` builds it from, in increasing precedence:

1. the dataclass defaults,
2. ``--config FILE.yaml``,
3. ``key=value`` / ``--key value`` / ``--key=value`` arguments (``a.b=1`` reaches nested
   dataclasses; ``--flag`` alone sets a bool to true).

Values from YAML or the CLI are coerced to the field's annotated type, and an unknown key
or a value of the wrong type is a :class:`ConfigError` that names the file and the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or command-line override that does not fit the recipe's dataclass."""


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _parse_scalar_string(text: str) -> Any:
    """Interpret a CLI string the way YAML would (numbers, bools, null, lists)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _coerce(value: Any, tp: Any, where: str) -> Any:
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise ConfigError(f"{where}: null is not allowed here (expected {getattr(tp, '__name__', tp)})")
    if tp is Any:
        return value
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return _build(tp, value, where)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if isinstance(value, str):
            parsed = _parse_scalar_string(value)
            value = parsed if isinstance(parsed, list) else [s for s in value.split(",") if s != ""]
        if not isinstance(value, (list, tuple)):
            value = [value]
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if isinstance(value, str):
            value = dict(kv.split("=", 1) for kv in value.split(",") if kv)
        if isinstance(value, (list, tuple)):  # ["domain=movie", "style=short"]
            value = dict(str(kv).split("=", 1) for kv in value)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if typing.get_origin(tp) is typing.Literal:
        if isinstance(value, str) and value not in args:
            value = _parse_scalar_string(value)
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if tp is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, str):
            try:
                value = int(value) if tp is int and value.strip().lstrip("+-").isdigit() else float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if tp is int and float(value) != int(value):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return tp(value)
    if tp is str:
        return str(value)
    if tp is Path:
        return Path(value)
    return value


def _build(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; valid keys: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}: {k}") for k, v in values.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as e:  # a dataclass's own range checks (__post_init__)
        raise ConfigError(f"{where}: {e}") from None
    except ArithmeticError as e:  # a check that divides by a setting given as 0 (e.g. batch_size % mini_batch_size)
        zeros = [
            f"{k}={v!r}"
            for k, v in kwargs.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == 0
        ]
        raise ConfigError(f"{where}: {', '.join(zeros) or 'a setting'} is out of range ({e})") from None


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"command line: {dotted}: {key} is not a section")
    node[keys[-1]] = value


def _merge(base: dict, extra: Mapping) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; --config takes a YAML file (e.g. configs/train.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); --config takes a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML ({problem}{at})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    return data


def out_folder(path: str | Path, key: str = "out") -> Path:
    """An output-folder setting, checked before any work: a file there is an error (the run would
    replace it by a folder)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{key}={path}: is a file; {key}= takes a folder")
    return p


def out_file(path: str | Path, key: str = "out", what: str = "a file") -> Path:
    """An output-file setting, checked before any work: a folder there is an error."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{key}={path}: is a folder; {key}= takes {what}")
    return p


def _bool_fields(cls: type) -> set[str]:
    hints = typing.get_type_hints(cls)
    return {name for name, tp in hints.items() if _strip_optional(tp)[0] is bool}


_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def split_argv(
    cls: type, argv: Sequence[str], aliases: Mapping[str, str] | None = None
) -> tuple[str | None, dict, list[str]]:
    """Split argv into (config path, overrides tree, positional args)."""
    aliases = dict(aliases or {})
    bools = _bool_fields(cls)
    hints = typing.get_type_hints(cls)
    dict_fields = {n for n, tp in hints.items() if typing.get_origin(_strip_optional(tp)[0]) in (dict, Mapping)}
    list_fields = {n for n, tp in hints.items() if typing.get_origin(_strip_optional(tp)[0]) in (list, tuple, Sequence)}
    config_path: str | None = None
    overrides: dict = {}
    positional: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in aliases:
            arg = "--" + aliases[arg]
        if arg.startswith("--"):
            key, eq, val = arg[2:].partition("=")
            key = key.replace("-", "_")
            if key == "config":
                if not eq:
                    i += 1
                    if i >= len(args):
                        raise ConfigError("command line: --config needs a path")
                    val = args[i]
                config_path = val
            elif eq:
                _set_path(overrides, key, val)
            elif key in bools and (i + 1 >= len(args) or args[i + 1].lower() not in _BOOL_WORDS):
                _set_path(overrides, key, "true")
            elif key.startswith("no_") and key[3:] in bools:
                _set_path(overrides, key[3:], "false")
            else:
                # collect one or more values: --prompt a --tags x=1 y=2
                vals = []

                def takes(nxt: str, key: str = key) -> bool:
                    if nxt.startswith("--") or nxt in aliases:
                        return False
                    if "=" not in nxt:
                        return True
                    k = nxt.split("=", 1)[0]  # key=value: a dict entry, unless it names a setting
                    return key in dict_fields and "." not in k and k not in hints

                while i + 1 < len(args) and takes(args[i + 1]):
                    i += 1
                    vals.append(args[i])
                if not vals:
                    raise ConfigError(f"command line: --{key} needs a value")
                if key in list_fields or key in dict_fields:  # --prompt a --prompt b / --tags x=1 --tags y=2 accumulate
                    overrides[key] = [*overrides.get(key, []), *vals]
                else:
                    _set_path(overrides, key, vals[0] if len(vals) == 1 else vals)
        elif "=" in arg and not arg.startswith("-"):
            key, _, val = arg.partition("=")
            _set_path(overrides, key.replace("-", "_"), val)
        else:
            positional.append(arg)
        i += 1
    return config_path, overrides, positional


def help_text(cls: type, aliases: Mapping[str, str] | None = None) -> str:
    """One line per config field: name, type, default, and the comment above it in the source."""
    import inspect

    comments: dict[str, str] = {}
    try:
        lines = inspect.getsource(cls).splitlines()
        for i, line in enumerate(lines):
            stripped = line.strip()
            if ":" in stripped and not stripped.startswith(("#", '"', "@", "class")):
                name = stripped.split(":")[0].strip()
                if i + 1 < len(lines) and lines[i + 1].strip().startswith('"""'):
                    comments[name] = lines[i + 1].strip().strip('"')
    except (OSError, TypeError):
        pass
    rev = {v: k for k, v in (aliases or {}).items()}
    out = [f"{cls.__name__} settings (--config FILE.yaml, then key=value or --key value):"]
    for f in dataclasses.fields(cls):
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else "(required)")
        )
        alias = f" ({rev[f.name]})" if f.name in rev else ""
        out.append(f"  --{f.name}{alias} = {default!r}")
        if f.name in comments:
            out.append(f"      {comments[f.name]}")
    return "\n".join(out)


def parse(cls: type[T], argv: Sequence[str] = (), aliases: Mapping[str, str] | None = None) -> T:
    """Build ``cls`` from defaults, an optional ``--config`` YAML and CLI overrides."""
    if any(a in ("-h", "--help") for a in argv):
        print(help_text(cls, aliases))
        raise SystemExit(0)
    config_path, overrides, positional = split_argv(cls, argv, aliases)
    if positional:
        raise ConfigError(f"command line: unexpected argument(s) {positional}")
    values: dict = {}
    where = "command line"
    if config_path:
        values = load_yaml(config_path)
        where = str(config_path)
    _build(cls, values, where)  # validate the file alone first, so errors name only the file
    return _build(cls, _merge(values, overrides), f"{where} + command line" if overrides and config_path else where)


def with_overrides(cfg: T, overrides: str, where: str = "overrides") -> T:
    """A copy of the dataclass ``cfg`` with space-separated ``key=value`` overrides applied
    (``"lr=1e-5 sft.max_steps=60"``), typed and checked like command-line overrides."""
    tree: dict = {}
    for item in overrides.split():
        key, eq, val = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"{where}: {item!r} is not key=value")
        _set_path(tree, key, val)
    return _build(type(cfg), _merge(to_dict(cfg), tree), f"{where} {overrides!r}")


def defaults_dict(cfg: Any) -> dict:
    """The defaults of a config's fields, as :func:`to_dict` writes values: a field's default (or its
    default factory's value); for a nested config without one, its own fields' defaults; any other
    field without a default is left out. What a run recorded before a setting existed is read as that default."""
    out: dict = {}
    for f in dataclasses.fields(cfg):
        if f.default is not dataclasses.MISSING:
            out[f.name] = to_dict(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = to_dict(f.default_factory())
        elif dataclasses.is_dataclass(value := getattr(cfg, f.name)):
            out[f.name] = defaults_dict(value)
    return out


def to_dict(cfg: Any) -> dict:
    """A JSON/YAML-friendly dict of a config (paths as strings)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return conv(cfg)


def check_ranges(settings: Any, checks: Mapping[str, bool], rule: str) -> None:
    """A settings class's range check: the first key whose check fails, or whose value is not a finite
    number, is a ValueError naming it and its value, then ``rule`` (what the ranges are)."""
    import math

    bad = [k for k, ok in checks.items() if not (ok and math.isfinite(getattr(settings, k)))]
    if bad:
        raise ValueError(f"{bad[0]}={getattr(settings, bad[0])!r} is out of range ({rule})")
