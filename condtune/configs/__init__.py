"""The configs shipped with the package: ``--config frontier`` reads ``condtune/configs/frontier.yaml``.

A ``--config`` value that has no folder and no ``.yaml``/``.yml`` suffix is a packaged name; anything
else is a file path. So ``--config frontier`` works after a plain ``pip install``, from any folder, and
``--config ./my.yaml`` reads the user's own file. Copy a packaged config to start one of your own:
``python -c "import condtune.configs as c; print(c.path('frontier'))"``.
"""

from __future__ import annotations

from pathlib import Path

from condtune.errors import ConfigError

FOLDER = Path(__file__).resolve().parent


def names() -> list[str]:
    """The packaged config names, sorted."""
    return sorted(p.stem for p in FOLDER.glob("*.yaml"))


def is_name(value: str | Path) -> bool:
    """Whether a ``--config`` value names a packaged config rather than a file."""
    text = str(value)
    return bool(text) and "/" not in text and "\\" not in text and Path(text).suffix not in (".yaml", ".yml")


def path(name: str) -> Path:
    """The file of packaged config ``name``; an unknown name is a :class:`ConfigError` listing the names."""
    found = FOLDER / f"{name}.yaml"
    if not found.is_file():
        raise ConfigError(
            f"--config {name}: no packaged config of that name; packaged configs: {', '.join(names())} "
            "(or give a path to a YAML file, e.g. ./my_config.yaml)"
        )
    return found


def resolve(value: str | Path) -> Path:
    """The file a ``--config`` value means: a packaged config's file for a bare name, else the path."""
    return path(str(value)) if is_name(value) else Path(value)
