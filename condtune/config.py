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
values a file expands to through anchors and aliases.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml

from condtune import configs
from condtune.errors import ConfigError

T = TypeVar("T")


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
    """Interpret a CLI string the way YAML would (numbers, bools, null, lists); a string that is not
    YAML stays a string, but one with a duplicate key or too many values is a ConfigError."""
    try:
        return yaml.load(text, Loader=ConfigLoader)  # a SafeLoader subclass
    except ConfigYAMLError as exc:
        raise ConfigError(f"command line: {text!r}: {exc}") from None
    except (yaml.YAMLError, RecursionError):
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
            value = [kv for kv in value.split(",") if kv]
        if isinstance(value, (list, tuple)):  # ["domain=movie", "style=short"]
            value = _entries([str(kv) for kv in value], where)
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


MAX_CONFIG_BYTES = 1_000_000
"""the largest config file :func:`load_yaml` reads (a config is settings, not data)"""
MAX_CONFIG_VALUES = 100_000
"""the most values (mapping keys and values, list items, scalars) a YAML document may expand to,
counting every use of an alias: a few lines of nested aliases can otherwise expand to billions"""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigYAMLError(yaml.YAMLError):
    """A YAML document that :class:`ConfigLoader` refuses: a duplicate key, or too many values."""


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a mapping with a key given twice (at any depth; a ``<<``
    merge may still be overridden by the mapping's own keys, as YAML intends), a document that
    expands to more than :data:`MAX_CONFIG_VALUES` values through aliases, and recursive aliases.
    The checks run on the composed node graph, before anything is constructed."""

    max_values = MAX_CONFIG_VALUES

    def construct_document(self, node: yaml.Node) -> Any:
        self._check_node(node)
        return super().construct_document(node)

    def _check_node(self, root: yaml.Node) -> None:
        sizes: dict[int, int] = {}  # node id -> values it expands to (aliases share nodes)
        active: set[int] = set()
        stack: list[tuple[yaml.Node, str, bool]] = [(root, "", False)]
        while stack:  # iterative: a deeply nested document must not overflow the Python stack
            node, path, done = stack.pop()
            key = id(node)
            if done:
                active.discard(key)
                children = _children(node)
                sizes[key] = 1 + sum(sizes[id(c)] for _, c in children)
                if sizes[key] > self.max_values:
                    raise ConfigYAMLError(
                        f"expands to more than {self.max_values:,} values (through anchors and aliases, "
                        f"from line {node.start_mark.line + 1}); a config is a few settings, not data"
                    )
                continue
            if key in sizes:
                continue
            if key in active:
                raise ConfigYAMLError(
                    f"a recursive alias at line {node.start_mark.line + 1} (an anchor used inside itself)"
                )
            active.add(key)
            if isinstance(node, yaml.MappingNode):
                self._check_keys(node, path)
            stack.append((node, path, True))
            for name, child in reversed(_children(node)):
                if id(child) not in sizes:
                    stack.append((child, _join(path, name), False))

    def _check_keys(self, node: yaml.MappingNode, path: str) -> None:
        first: dict[Any, int] = {}  # key -> its line; dict semantics, as the mapping built from it would have
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            k = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if k in first:
                    name = f"{path}.{k}" if path else str(k)
                    raise ConfigYAMLError(
                        f"duplicate key {name!r} at line {line} (first at line {first[k]}); "
                        "YAML would keep only the last one: give each key once"
                    )
                first[k] = line
            except TypeError:  # an unhashable key: the constructor says so
                continue


def _children(node: yaml.Node) -> list[tuple[str, yaml.Node]]:
    """A node's children with the name each adds to a key path ('' for a key, '[i]' for a list item)."""
    if isinstance(node, yaml.MappingNode):
        out: list[tuple[str, yaml.Node]] = []
        for k, v in node.value:
            name = str(k.value) if isinstance(k, yaml.ScalarNode) and k.tag != _MERGE_TAG else ""
            out += [("", k), (name, v)]
        return out
    if isinstance(node, yaml.SequenceNode):
        return [(f"[{i}]", c) for i, c in enumerate(node.value)]
    return []


def _join(path: str, name: str) -> str:
    if not name:
        return path
    return f"{path}{name}" if name.startswith("[") or not path else f"{path}.{name}"


def load_yaml(path: str | Path) -> dict:
    """A config file's top-level mapping, read with :class:`ConfigLoader`; every problem (missing,
    not UTF-8, larger than :data:`MAX_CONFIG_BYTES`, not YAML, a duplicate key, an alias bomb, not a
    mapping) is a :class:`ConfigError` naming the file (and the line and key where there is one)."""
    path = configs.resolve(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; --config takes a YAML file or a packaged config's name (e.g. train)")
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes; --config takes a YAML file of settings, not data"
            )
        data = yaml.load(raw.decode("utf-8"), Loader=ConfigLoader)  # a SafeLoader subclass
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); --config takes a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    except ConfigYAMLError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML ({problem}{at})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config file") from None
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


def _short(text: str, limit: int = 60) -> str:
    """A value or path for an error line: its start and its end (a path's file name), the middle elided."""
    keep = (limit - 3) // 2
    return text if len(text) <= limit else text[:keep] + "..." + text[-keep:]


def _claim(given: dict[str, tuple[Any, str]], key: str, value: Any, as_given: str, where: str, hint: str = "") -> None:
    """Record that setting ``key`` (dotted) was given ``value``, as ``as_given``; a ConfigError naming the key
    when it was already given another value, or a section above it or a setting under it was given (the
    first would be silently dropped). The same value twice says nothing new and is let be."""
    for other, (before, before_as) in given.items():
        if other == key and before == value:
            return
        if other == key or other.startswith(key + ".") or key.startswith(other + "."):
            name = min(other, key, key=len)
            raise ConfigError(
                f"{where}: {name} is given twice ({_short(before_as)}, then {_short(as_given)}); give each setting "
                f"once{hint}"
            )
    given[key] = (value, as_given)


def split_argv(
    cls: type, argv: Sequence[str], aliases: Mapping[str, str] | None = None
) -> tuple[str | None, dict, list[str]]:
    """Split argv into (config path, overrides tree, positional args).

    A setting given two values (``lr=1 lr=2``, ``--lr 1 --lr=2``, ``a.b=1 --a.b 2``, ``a.b=1 a=...``)
    and ``--config`` given twice are errors (:class:`ConfigError`) naming the key (the same value
    twice says nothing new and is let be); only list and dict settings given as repeated
    ``--key value ...`` accumulate (``--prompt a --prompt b``, ``--tags x=1 --tags y=2``).
    """
    aliases = dict(aliases or {})
    bools = _bool_fields(cls)
    hints = typing.get_type_hints(cls)
    dict_fields = {n for n, tp in hints.items() if typing.get_origin(_strip_optional(tp)[0]) in (dict, Mapping)}
    list_fields = {n for n, tp in hints.items() if typing.get_origin(_strip_optional(tp)[0]) in (list, tuple, Sequence)}
    config_path: str | None = None
    overrides: dict = {}
    positional: list[str] = []
    given: dict[str, tuple[Any, str]] = {}  # dotted key -> (value, as given), for the error on a second time
    accumulated: set[str] = set()  # list/dict settings given only as --key value ... (these may repeat)
    where = "command line"

    def put(key: str, value: Any, as_given: str) -> None:
        hint = ""
        if key in list_fields or key in dict_fields:
            hint = f" (a list: {key}=[a,b], or repeat --{key} VALUE to add items)"
            if key in dict_fields:
                hint = f" (a mapping: repeat --{key} k=v to add entries)"
        _claim(given, key, value, as_given, where, hint)
        _set_path(overrides, key, value)

    args = list(argv)
    i = 0
    while i < len(args):
        arg = orig = args[i]
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
                if config_path is not None:
                    raise ConfigError(
                        f"command line: --config is given twice ({_short(config_path)}, then {_short(val)}); "
                        "give one config file, and settings after it to override it"
                    )
                config_path = val
            elif eq:
                put(key, val, orig)
            elif key in bools and (i + 1 >= len(args) or args[i + 1].lower() not in _BOOL_WORDS):
                put(key, "true", orig)
            elif key.startswith("no_") and key[3:] in bools:
                put(key[3:], "false", orig)
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
                as_given = " ".join([orig, *vals])
                if key in list_fields or key in dict_fields:  # --prompt a --prompt b / --tags x=1 --tags y=2 accumulate
                    if key not in accumulated:
                        _claim(given, key, None, as_given, where)
                        accumulated.add(key)
                    overrides[key] = [*overrides.get(key, []), *vals]
                else:
                    put(key, vals[0] if len(vals) == 1 else vals, as_given)
        elif "=" in arg and not arg.startswith("-"):
            key, _, val = arg.partition("=")
            put(key.replace("-", "_"), val, orig)
        else:
            positional.append(arg)
        i += 1
    return config_path, overrides, positional


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
        _claim(given, key, val, item, f"{where} {overrides!r}")
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
    bad = [k for k, ok in checks.items() if not (ok and math.isfinite(getattr(settings, k)))]
    if bad:
        raise ValueError(f"{bad[0]}={getattr(settings, bad[0])!r} is out of range ({rule})")
