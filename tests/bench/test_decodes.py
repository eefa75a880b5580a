"""Which decodes a checkpoint is evaluated at: a sweep entry of a conditional method may set its own."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from condtune.bench.evaluation import decode_name, decodes
from condtune.bench.methods import make_run
from condtune.bench.settings import MIRROR, BenchConfig
from condtune.checkpointing import Checkpoint


def test_a_sweep_entry_sets_its_own_decodes():
    cfg = BenchConfig(eval_temperatures=[1.0, 0.7])
    ctx = SimpleNamespace(cfg=cfg)
    ck = Checkpoint(method="conditional", name="step_60", conditional=True)
    plain = make_run(cfg, "conditional", "default", seed=0)
    tuned = make_run(cfg, "conditional", "anchored_guidance=[0.5,1.5] guidance=[1.0] contrast_guidance=[1.0]", seed=0)
    assert [decode_name(*d) for d in decodes(ctx, ck, plain.settings)] == ["T=1", "T=0.7"]
    assert [decode_name(*d) for d in decodes(ctx, ck, tuned.settings)] == [
        "T=1",
        "T=1 anchored g=0.5",
        "T=1 anchored g=1.5",
        "T=1 anchored g=1 vs mirror",
        "T=0.7",
        "T=0.7 anchored g=0.5",
        "T=0.7 anchored g=1.5",
        "T=0.7 anchored g=1 vs mirror",
    ]
    ppo = Checkpoint(method="ppo", name="step_10")  # an unconditioned policy: plain sampling only
    assert [decode_name(*d) for d in decodes(ctx, ppo, tuned.settings)] == ["T=1", "T=0.7"]


def test_a_contrast_with_the_mirrored_tag_is_named_apart_from_the_untagged_one():
    assert decode_name(1.0, 2.0, False, MIRROR) == "T=1 g=2 vs mirror" != decode_name(1.0, 2.0)
    assert decode_name(1.0, 1.5, True, MIRROR) == "T=1 anchored g=1.5 vs mirror" != decode_name(1.0, 1.5, True)


def test_a_run_is_named_by_its_training_overrides_only():
    """Decode settings in a sweep entry are evaluated on its run but do not name it, so adding a
    scale to an entry evaluates the run already trained instead of starting another."""
    from condtune.bench.settings import run_setting

    cfg = BenchConfig()
    run = make_run(cfg, "conditional", "sft.tag_contrast=1 checkpoints=[60] contrast_guidance=[0.25,2.0]", seed=1)
    assert run.setting == "sft.tag_contrast=1 checkpoints=[60]" and run.settings.contrast_guidance == [0.25, 2.0]
    assert run.work(Path(cfg.output_dir)).as_posix().endswith("seed_1/conditional/sft.tag_contrast=1 checkpoints=[60]")
    assert run_setting("anchored_guidance=[1.0] guidance=[2.0]") == run_setting("default") == "default"


def test_two_entries_that_train_the_same_run_are_refused():
    import pytest

    from condtune.bench.settings import variants
    from condtune.config import ConfigError

    cfg = BenchConfig(sweeps={"conditional": ["default", "contrast_guidance=[1.0]"], "ppo": ["kl_coef=0.1"]})
    assert variants(cfg, "ppo") == ["kl_coef=0.1"] and variants(cfg, "dpo") == ["default"]
    with pytest.raises(ConfigError, match="sweeps.conditional: entries 'default' and 'contrast_guidance=.1.0.' train"):
        variants(cfg, "conditional")
