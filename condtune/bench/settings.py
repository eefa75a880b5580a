"""The benchmark's typed settings: one :class:`BenchConfig` (YAML + command line), with one
block per method. ``sweeps`` turns a baseline into a frontier: each entry is one run of the
method with some of its settings overridden (``"kl_coef=0.02"``), reported as its own curve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from condtune.baselines.best_of_n import BestOfNSettings
from condtune.baselines.dpo import DPOSettings
from condtune.baselines.ppo_config import PPOConfig
from condtune.baselines.rloo import RLOOSettings
from condtune.config import ConfigError
from condtune.online import OnlineSettings
from condtune.policy import SFTSettings
from condtune.sampling import SamplingConfig
from condtune.scorer import OptimConfig

UNTAGGED, MIRROR = "untagged", "mirror"
"""what guidance contrasts the requested target's tag with: the prompt without a score tag, or the
tag of the mirrored target (bin k - 1 - i for bin i: the bottom bin for the top one)"""

METHODS = ("conditional", "conditional_self", "conditional_online", "ppo", "rloo", "dpo", "best_of_n")
CONDITIONAL_METHODS = ("conditional", "conditional_self", "conditional_online")  # evaluated per requested target
CEILING_METHODS = ("conditional", "conditional_self")  # with a corpus of their own, whose controllability is a ceiling
DECODE_SETTINGS = ("guidance", "anchored_guidance", "contrast_guidance")
"""settings of how a trained policy is sampled in evaluation, not of its training: not part of a run's identity
(its folder, its results' setting), so a scale added to a sweep entry evaluates the run already trained"""


@dataclass
class ScorerSettings:
    backbone: str = "minilm"
    """encoder of the proxy scorer and of the (MiniLM) gold rater"""
    max_train_samples: int = 0
    """training items per scorer (0 = all of the task's training items)"""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(num_train_epochs=2.0, learning_rate=1e-4))
    """optimisation"""


@dataclass
class ConditionalSettings:
    num_bins: int = 5
    """score bins (= requested targets, at the bins' medians)"""
    tag_style: Literal["text", "token"] = "text"
    """'text' tags (plain words) or 'token' (new special tokens)"""
    sft: SFTSettings = field(
        default_factory=lambda: SFTSettings(
            per_device_train_batch_size=16, learning_rate=1e-4, max_length=64, save_steps=20
        )
    )
    """conditional SFT settings (max_steps is the last checkpoint: one run, one schedule)"""
    checkpoints: list[int] = field(default_factory=lambda: [60, 120])
    """steps at which the one run is snapshotted and evaluated"""
    guidance: list[float] = field(default_factory=lambda: [1.0])
    """classifier-free guidance scales evaluated (1 = none); each is a point of the frontier, with its exact KL"""
    anchored_guidance: list[float] = field(default_factory=list)
    """scales g of guidance anchored on the base policy, log pi_ref(.|x) + g * (log pi(.|tag, x) - log pi(.|x)): the
    tag's contrast moves the base model (proxy-tuning, Liu et al. 2024); each a point of the frontier with its exact
    KL; needs a policy trained with condition dropout"""
    contrast_guidance: list[float] = field(default_factory=list)
    """scales g of anchored guidance against the mirrored target's tag instead of the untagged prompt,
    log pi_ref(.|x) + g * (log pi(.|tag_i, x) - log pi(.|tag_(k-1-i), x)): the top target is contrasted with
    the bottom one (the negative prompt of classifier-free guidance), the middle one is the base; each a point
    of the frontier with its exact KL; needs no condition dropout"""
    samples_per_prompt: int = 4
    """conditional_self only: base-policy samples per training prompt, relabelled by the proxy, as its SFT corpus"""
    relative_bins: bool = True
    """conditional_self only: bin each sample by its score minus its prompt's mean (plus the overall mean), so the
    tag says what the completion adds, not which prompt it had"""
    online: OnlineSettings = field(default_factory=lambda: OnlineSettings(rounds=3))
    """conditional_online only: after the conditional run (to its last checkpoint), rounds of sampling at the
    targets from the policy, scoring by the proxy, refitting the bins over the pool and training on; each round
    is a checkpoint"""


@dataclass
class BenchConfig:
    output_dir: str = "runs/bench"
    """where everything goes; rerunning the same command resumes"""
    task: str = "vader_movie"
    """the task (a module in condtune/bench/tasks/): data, prompts, what the raters read, the proxy/gold rating split"""
    model: str = "smollm2-135m"
    """base policy (every method starts from it; it is also pi_ref)"""
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    """methods to run: conditional (SFT on the relabelled human texts), conditional_self (SFT on the base policy's
    own relabelled samples), conditional_online (conditional, then online rounds on its own samples), ppo, rloo,
    dpo, best_of_n"""
    sweeps: dict[str, list[str]] = field(default_factory=dict)
    """per method, the runs of its frontier: each a space-separated list of overrides of its settings, e.g.
    {ppo: ["kl_coef=0.02", "kl_coef=0.05"], rloo: ["lr=1e-5 beta=0.05"]}; none = one run with the settings as given.
    An entry's decode settings (guidance scales) are evaluated on its run but do not name it: the run is
    named by the entry's other overrides ('default' if none)"""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """training / sampling seeds (scorers, data splits and prompts are shared)"""
    proxy_scorer: str = ""
    """existing proxy scorer dir ('' = train one on half_a of the ratings)"""
    gold_scorer: str = ""
    """existing gold rater dir ('' = train one on half_b of the ratings)"""
    gold2: bool = True
    """also judge with a second gold rater of another family (word/char n-gram ridge on all training ratings)"""
    scorer: ScorerSettings = field(default_factory=ScorerSettings)
    """how the two MiniLM scorers are trained"""
    val_fraction: float = 0.1
    """held-out fraction of items (the scorers' split)"""
    max_train_samples: int = 4000
    """training texts for SFT (relabelled) and the DPO pair pool"""
    n_train_prompts: int = 512
    """RL (and conditional_self) training prompts: the header plus a neutral opening of a training text"""
    n_eval_prompts: int = 64
    """held-out evaluation prompts, shared by every method, seed and diagnostic: the header alone plus neutral
    openings of held-out texts"""
    opening_words: int = 2
    """words of a neutral opening"""
    eval_n: int = 4
    """samples per evaluation prompt (and per requested target)"""
    eval_temperatures: list[float] = field(default_factory=lambda: [1.0])
    """sampling temperatures every trained policy is evaluated at (1 is the reference point for all)"""
    n_boot: int = 1000
    """bootstrap replicates (resampling prompts, pooled over seeds) for every 95% interval"""
    sampling: SamplingConfig = field(
        default_factory=lambda: SamplingConfig(max_new_tokens=24, temperature=1.0, top_p=1.0, batch_size=16, bf16=False)
    )
    """generation settings shared by every method in training rollouts and evaluation
    (fp32: the KL is of what was sampled)"""
    kl_batch_size: int = 8
    """sequences per forward pass when computing exact KL"""
    conditional: ConditionalSettings = field(default_factory=ConditionalSettings)
    """condtune: relabel with the proxy, conditional SFT"""
    ppo: PPOConfig = field(
        default_factory=lambda: PPOConfig(
            per_device_train_batch_size=16,
            mini_batch_size=8,
            ppo_epochs=2,
            learning_rate=3e-5,
            kl_coef=0.05,
            save_steps=5,
            sample_every=0,
        )
    )
    """PPO settings (model, scorer, prompts, output_dir, seed and lengths are set by the bench)"""
    ppo_checkpoints: list[int] = field(default_factory=lambda: [10, 20, 40])
    """PPO updates at which the policy is evaluated"""
    rloo: RLOOSettings = field(default_factory=RLOOSettings)
    """RLOO (trl) settings"""
    dpo: DPOSettings = field(default_factory=DPOSettings)
    """DPO (trl) settings"""
    best_of_n: BestOfNSettings = field(default_factory=BestOfNSettings)
    """best-of-n settings"""
    keep_weights: list[str] = field(default_factory=lambda: ["conditional", "conditional_self"])
    """methods whose final policy weights are kept once evaluated; everything else (optimizer state, other snapshots)
    is deleted after evaluation to keep runs/ small"""
    archive: str = ""
    """a folder that keeps this benchmark's results beyond out/ (results, per-sample tables, the protocol, the
    records of finished runs; no weights): pulled into out/ before anything runs, and every finished run is added
    to it, so a long benchmark can run in pieces on machines that do not keep out/ ('' = none)"""
    report_only: bool = False
    """write the report from out/results.jsonl (every method and seed in it) without training or evaluating"""
    threads: int = 1
    """torch CPU threads (1 avoids oversubscription on a shared machine; 0 = torch default)"""


def run_setting(entry: str) -> str:
    """The name of a sweep entry's run: its overrides less the decode ones ('default' if none is left)."""
    kept = [item for item in entry.split() if item != "default" and item.split("=", 1)[0] not in DECODE_SETTINGS]
    return " ".join(kept) or "default"


def variants(cfg: BenchConfig, method: str) -> list[str]:
    """The sweep entries of a method (or one, 'default'), each training its own run."""
    entries = list(cfg.sweeps.get(method) or ["default"])
    seen: dict[str, str] = {}
    for entry in entries:
        name = run_setting(entry)
        if name in seen:
            raise ConfigError(
                f"sweeps.{method}: entries {seen[name]!r} and {entry!r} train the same run ({name!r}; they differ "
                "only in how it is sampled): put their decode settings in one entry"
            )
        seen[name] = entry
    return entries
