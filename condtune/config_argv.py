"""The command line of a command, split into what :func:`condtune.config.parse` builds its config from:
the ``--config`` file, the settings tree (``key=value``, ``--key value``, ``--key=value``, ``--flag``,
``a.b=1`` for nested sections) and any positional arguments. A setting given twice is an error
naming it (:func:`claim_setting`); only list and dict settings given as repeated ``--key value``
accumulate."""

from __future__ import annotations

import types
import typing
from typing import Any, Mapping, Sequence

from condtune.errors import ConfigError


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """``tp`` without its ``| None`` (or ``Optional``), and whether it had one."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def set_path(tree: dict, dotted: str, value: Any) -> None:
    """Set ``tree``'s setting ``dotted`` (``a.b.c``) to ``value``, making its sections."""
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"command line: {dotted}: {key} is not a section")
    node[keys[-1]] = value


_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def _short(text: str, limit: int = 60) -> str:
    """A value or path for an error line: its start and its end (a path's file name), the middle elided."""
    keep = (limit - 3) // 2
    return text if len(text) <= limit else text[:keep] + "..." + text[-keep:]


def claim_setting(
    given: dict[str, tuple[Any, str]], key: str, value: Any, as_given: str, where: str, hint: str = ""
) -> None:
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


def _bool_fields(cls: type) -> set[str]:
    hints = typing.get_type_hints(cls)
    return {name for name, tp in hints.items() if strip_optional(tp)[0] is bool}


def split_argv(
    cls: type, argv: Sequence[str], aliases: Mapping[str, str] | None = None
) -> tuple[str | None, dict, list[str]]:
    """Split argv into (config path, overrides tree, positional args).

    A setting given two values (``lr=1 lr=2``, ``--lr 1 --lr=2``, ``a.b=1 --a.b 2``, ``a.b=1 a=...``)
    and ``--config`` given twice are errors (:class:`ConfigError`) naming the key (the same value
    twice says nothing new and is let be); only list and dict settings given as repeated
    ``--key value ...`` accumulate (``--prompt a --prompt b``, ``--tags x=1 --tags y=2``).
    """
    split = _Split(cls, dict(aliases or {}))
    args = list(argv)
    i = 0
    while i < len(args):
        arg = orig = args[i]
        if arg in split.aliases:
            arg = "--" + split.aliases[arg]
        if arg.startswith("--"):
            i = split.option(args, i, arg, orig)
        elif "=" in arg and not arg.startswith("-"):
            key, _, val = arg.partition("=")
            split.put(key.replace("-", "_"), val, orig)
        else:
            split.positional.append(arg)
        i += 1
    return split.config_path, split.overrides, split.positional


class _Split:
    """What :func:`split_argv` has read so far of one command line for the config class ``cls``."""

    def __init__(self, cls: type, aliases: dict[str, str]):
        self.aliases = aliases
        self.bools = _bool_fields(cls)
        self.hints = hints = typing.get_type_hints(cls)
        self.dict_fields = {n for n, tp in hints.items() if typing.get_origin(strip_optional(tp)[0]) in (dict, Mapping)}
        self.list_fields = {
            n for n, tp in hints.items() if typing.get_origin(strip_optional(tp)[0]) in (list, tuple, Sequence)
        }
        self.config_path: str | None = None
        self.overrides: dict = {}
        self.positional: list[str] = []
        self.given: dict[str, tuple[Any, str]] = {}  # dotted key -> (value, as given), for the error on a second time
        self.accumulated: set[str] = set()  # list/dict settings given only as --key value ... (these may repeat)
        self.where = "command line"

    def put(self, key: str, value: Any, as_given: str) -> None:
        hint = ""
        if key in self.list_fields or key in self.dict_fields:
            hint = f" (a list: {key}=[a,b], or repeat --{key} VALUE to add items)"
            if key in self.dict_fields:
                hint = f" (a mapping: repeat --{key} k=v to add entries)"
        claim_setting(self.given, key, value, as_given, self.where, hint)
        set_path(self.overrides, key, value)

    def option(self, args: list[str], i: int, arg: str, orig: str) -> int:
        """Read the ``--key`` option ``arg`` (``args[i]`` as given: ``orig``) and the values it takes; the
        index of the last argument read."""
        key, eq, val = arg[2:].partition("=")
        key = key.replace("-", "_")
        if key == "config":
            if not eq:
                i += 1
                if i >= len(args):
                    raise ConfigError("command line: --config needs a path")
                val = args[i]
            if self.config_path is not None:
                raise ConfigError(
                    f"command line: --config is given twice ({_short(self.config_path)}, then {_short(val)}); "
                    "give one config file, and settings after it to override it"
                )
            self.config_path = val
        elif eq:
            self.put(key, val, orig)
        elif key in self.bools and (i + 1 >= len(args) or args[i + 1].lower() not in _BOOL_WORDS):
            self.put(key, "true", orig)
        elif key.startswith("no_") and key[3:] in self.bools:
            self.put(key[3:], "false", orig)
        else:
            i = self.values(args, i, key, orig)
        return i

    def takes(self, key: str, nxt: str) -> bool:
        """Whether the argument ``nxt`` is one more value of ``--key``."""
        if nxt.startswith("--") or nxt in self.aliases:
            return False
        if "=" not in nxt:
            return True
        k = nxt.split("=", 1)[0]  # key=value: a dict entry, unless it names a setting
        return key in self.dict_fields and "." not in k and k not in self.hints

    def values(self, args: list[str], i: int, key: str, orig: str) -> int:
        """Collect one or more values of ``--key`` (``args[i]``): ``--prompt a``, ``--tags x=1 y=2``; the
        index of the last one."""
        vals = []
        while i + 1 < len(args) and self.takes(key, args[i + 1]):
            i += 1
            vals.append(args[i])
        if not vals:
            raise ConfigError(f"command line: --{key} needs a value")
        as_given = " ".join([orig, *vals])
        if (
            key in self.list_fields or key in self.dict_fields
        ):  # --prompt a --prompt b / --tags x=1 --tags y=2 accumulate
            if key not in self.accumulated:
                claim_setting(self.given, key, None, as_given, self.where)
                self.accumulated.add(key)
            self.overrides[key] = [*self.overrides.get(key, []), *vals]
        else:
            self.put(key, vals[0] if len(vals) == 1 else vals, as_given)
        return i
