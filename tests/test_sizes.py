"""The package's size limits hold: no module in condtune/ over :data:`MAX_MODULE_LINES` lines and no
function (method, nested function and each command's ``main`` included) over :data:`MAX_FUNCTION_LINES`
lines, from its ``def`` (decorators aside) to its last line. A module that outgrows them is split at its
seams; a function, into named steps.

Read from the source with ``ast`` (nothing is imported), one test a module, so a failure names the
module, and each long function as file:line:function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "condtune"

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

EXEMPT = {
    "condtune/rate/pages.py": "the rating page's inline HTML, CSS and JS templates: page text, not logic to split",
}
"""module (relative to the repository) -> why the limits do not apply to it"""

MODULES = sorted(p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py"))


def long_functions(source: str, name: str, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``name:line:function (N lines)`` for each function of ``source`` longer than ``limit`` lines."""
    return [
        f"{name}:{node.lineno}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source, filename=name))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit
    ]


@pytest.mark.parametrize(
    "module",
    [pytest.param(m, marks=pytest.mark.skip(reason=f"exempt: {EXEMPT[m]}")) if m in EXEMPT else m for m in MODULES],
)
def test_module_within_size_limits(module: str):
    source = (ROOT / module).read_text(encoding="utf-8")
    lines = len(source.splitlines())
    assert lines <= MAX_MODULE_LINES, (
        f"{module} has {lines} lines (limit {MAX_MODULE_LINES}): split it at its seams into modules named for what "
        "they do"
    )
    long = long_functions(source, module)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them into named steps):\n" + "\n".join(long)


def test_every_exemption_names_a_module():
    stale = sorted(set(EXEMPT) - set(MODULES))
    assert not stale, f"EXEMPT names modules that are not in condtune/: {stale}"


def test_the_check_counts_a_function_from_def_to_last_line():
    """The count itself: a 60-line function (its def to its last line) is within, a 61-line one over;
    a method and a nested function are counted each on its own."""

    def function(name: str, lines: int, indent: str = "") -> str:
        return f"{indent}def {name}():\n" + f"{indent}    x = 1\n" * (lines - 1)

    source = (
        function("sixty", 60)  # lines 1-60
        + function("sixty_one", 61)  # 61-121
        + "class C:\n"  # 122
        + function("method", 61, "    ")  # 123-183
        + "def outer():\n"  # 184
        + function("inner", 61, "    ")  # 185-245
    )
    assert long_functions(source, "m.py") == [
        "m.py:61:sixty_one (61 lines)",
        "m.py:184:outer (62 lines)",
        "m.py:123:method (61 lines)",
        "m.py:185:inner (61 lines)",
    ]
