"""Typed dataclass configs, loaded from YAML and overridable from the command line.

Every recipe declares one ``@dataclass`` whose fields (with docstring comments) are its
configuration. :func:`parse` builds it from, in increasing precedence:

1. the dataclass defaults,
2. ``--config FILE.yaml``,
3. ``key=value`` / ``--key value`` / ``--key=value`` arguments (``a.b=1`` reaches nested
   dataclasses; ``--flag`` alone sets a bool to true).

Values from YAML or the CLI are coerced to the field's annotated type, and an unknown key
or a value of the wrong type is a :class:`ConfigError` that names the file and the key.

A config means what it says: a key given twice (in a YAML mapping at any depth, or a setting on
the command line) and ``--config`` given twice are errors, not "the last one wins"; only list and
dict settings given as repeated ``--key value`` accumulate (``--prompt a --prompt b``). The YAML
loader (:class:`ConfigLoader`) is PyYAML's safe loader, bounded in file size and in the number of
values a file expands to through anchors and aliases (:mod:`condtune.config_yaml`). The command line
is split by :mod:`condtune.config_argv`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml

from condtune import renames
from condtune.config_argv import claim_setting, set_path, split_argv, strip_optional
from condtune.config_yaml import ConfigLoader, ConfigYAMLError, load_yaml
from condtune.errors import ConfigError

T = TypeVar("T")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _parse_scalar_string(text: str) -> Any:
    """Interpret a CLI string the way YAML would (numbers, bools, null, lists); a string that is not
    YAML stays a string, but one with a duplicate key or too many values is a ConfigError."""
    try:
        return yaml.load(text, Loader=ConfigLoader)  # a SafeLoader subclass
    except ConfigYAMLError as exc:
        raise ConfigError(f"command line: {text!r}: {exc}") from None
    except (yaml.YAMLError, RecursionError):
        return text


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` (from YAML or the command line) as the annotated type ``tp``: a nested config built, a list,
    tuple or mapping item by item, a Literal checked, a bool, number, text or path converted; anything else
    as it is. A value of another type is a ConfigError naming ``where``."""
    tp, optional = strip_optional(tp)
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
        return _coerce_items(value, tp, origin, args, where)
    if origin in (dict, Mapping) or tp is dict:
        return _coerce_mapping(value, args, where)
    if typing.get_origin(tp) is typing.Literal:
        if isinstance(value, str) and value not in args:
            value = _parse_scalar_string(value)
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if tp is bool:
        return _coerce_bool(value, where)
    if tp in (int, float):
        return _coerce_number(value, tp, where)
    if tp is str:
        return str(value)
    if tp is Path:
        return Path(value)
    return value


def _coerce_items(value: Any, tp: Any, origin: Any, args: tuple, where: str) -> list | tuple:
    """A list or tuple setting: a YAML list, a comma-separated text or one value, each item coerced."""
    if isinstance(value, str):
        parsed = _parse_scalar_string(value)
        value = parsed if isinstance(parsed, list) else [s for s in value.split(",") if s != ""]
    if not isinstance(value, (list, tuple)):
        value = [value]
    item_tp = args[0] if args else Any
    items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple or tp is tuple else items


def _coerce_mapping(value: Any, args: tuple, where: str) -> dict:
    """A mapping setting: a mapping, or ``k=v`` entries (a list, or comma-separated text), each value coerced."""
    if isinstance(value, str):
        value = [kv for kv in value.split(",") if kv]
    if isinstance(value, (list, tuple)):  # ["domain=movie", "style=short"]
        value = _entries([str(kv) for kv in value], where)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    vt = args[1] if len(args) == 2 else Any
    return {str(k): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}


def _coerce_bool(value: Any, where: str) -> bool:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected true/false, got {value!r}")


def _coerce_number(value: Any, tp: type, where: str) -> int | float:
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


def _entries(items: list[str], where: str) -> dict[str, str]:
    """``["k=v", ...]`` as a dict; a key given twice (``--tags x=1 --tags x=2``) is a ConfigError, not the last."""
    out: dict[str, str] = {}
    for item in items:
        k, eq, v = item.partition("=")
        if not eq:
            raise ConfigError(f"{where}: {item!r} is not key=value")
        if k in out and out[k] != v:
            raise ConfigError(f"{where}: {k} is given twice ({k}={out[k]}, then {item}); give each key once")
        out[k] = v
    return out


def _build(cls: type[T], values: Mapping[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    for key in unknown:
        if said := renames.advice(cls.__name__, key, names):
            raise ConfigError(f"{where}: {said}")
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; valid keys: {sorted(names)}")
    values = {k: _over_default(cls, k, v) for k, v in values.items()}
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


def _over_default(cls: type, key: str, value: Any) -> Any:
    """A nested section given in part (``sampling.max_new_tokens=3``) changes only what it names: the
    rest keeps the config's own default for that section (``GenerateConfig``'s temperature 0.8), not the
    section class's."""
    if not isinstance(value, Mapping):
        return value
    f = next(f for f in dataclasses.fields(cls) if f.name == key)
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if not dataclasses.is_dataclass(default) or isinstance(default, type):
        return value
    return _merge(dataclasses.asdict(default), value)


def _merge(base: dict, extra: Mapping) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def out_file(path: str | Path, key: str, what: str = "a file") -> Path:
    """An output-file setting, checked before any work: a folder there is an error."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{key}={path}: is a folder; {key}= takes {what}")
    return p


def help_text(cls: type, aliases: Mapping[str, str] | None = None) -> str:
    """One line per config field: name, type, default, and the comment above it in the source."""
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
    given: dict[str, tuple[Any, str]] = {}
    for item in overrides.split():
        key, eq, val = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"{where}: {item!r} is not key=value")
        claim_setting(given, key, val, item, f"{where} {overrides!r}")
        set_path(tree, key, val)
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
    bad = [k for k, ok in checks.items() if not (ok and math.isfinite(getattr(settings, k)))]
    if bad:
        raise ValueError(f"{bad[0]}={getattr(settings, bad[0])!r} is out of range ({rule})")
