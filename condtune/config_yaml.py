"""Reading a config file: :func:`load_yaml` with :class:`ConfigLoader`, PyYAML's safe loader that refuses
a key given twice and bounds a file's size and the values its anchors and aliases expand to. Every
problem is a :class:`ConfigError` naming the file (and the line and key where there is one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from condtune import configs
from condtune.errors import ConfigError

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
