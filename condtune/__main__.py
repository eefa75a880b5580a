"""``python -m condtune <job> ...``: the same as the ``condtune`` command; what launchers such as
``accelerate launch -m condtune train ...`` and ``torchrun -m condtune train ...`` run."""

from condtune.cli import main

raise SystemExit(main())
