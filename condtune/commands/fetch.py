"""Fetch and cache the embedded defaults once (then everything runs offline).

condtune fetch
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from condtune import assets
from condtune import config as C


@dataclass
class FetchConfig:
    only: str = ""
    """fetch just one of smollm2-135m, minilm, vader (empty = all)"""


def main(argv: list[str] | None = None) -> int:
    cfg = C.parse(FetchConfig, sys.argv[1:] if argv is None else argv)
    getters = {"smollm2-135m": assets.smollm2_path, "minilm": assets.minilm_path, "vader": assets.vader_dir}
    if cfg.only and cfg.only not in getters:
        raise C.ConfigError(f"only={cfg.only!r}: choose from {list(getters)}")
    for name, get in getters.items():
        if not cfg.only or cfg.only == name:
            print(f"{name:14s} {get()}")
    print(f"cache: {assets.cache_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
