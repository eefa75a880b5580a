"""Training throughput of conditional SFT against plain trl SFTTrainer, on the same model, rows,
batch, length and precision (docs/benchmarks.md, "Throughput").

    python research/sft_throughput.py --trainer trl         # plain SFTTrainer, prompt/completion rows
    python research/sft_throughput.py --trainer condtune    # condtune's train_conditional (tags, dropout 0.1)
    python research/sft_throughput.py --trainer condtune --tag-contrast 1   # + the tag contrast term
    python research/sft_throughput.py --trainer condtune --kl-coef 0.3      # + the KL term

Rows: VADER movie texts after their tag (bins of the human mean rating), so both trainers see the
same token sequences. Prints one JSON line over the training steps after the first (model loading
excluded): seconds a step; tokens a second from the rows' mean length, and from the tokens the
trainer counted (trl's num_tokens; the plain SFT path logs it, the contrast and KL trainers do not);
peak RSS. Time the whole process from outside
(e.g. /usr/bin/time -v) for the wall-clock and memory of everything.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time

import torch
from transformers import TrainerCallback

from condtune.modeling import load_causal_lm
from condtune.policy import SFTSettings, train_conditional
from condtune.relabel import TagCard, tagged_prompt
from condtune.tags import Binning, TagFormat
from condtune.trl_compat import precision_kwargs, trainer_args
from condtune.vader import vader_corpus


class StepClock(TrainerCallback):
    """Wall-clock of the training steps only (the first step, which warms up, left out)."""

    def __init__(self):
        self.t0 = self.t1 = None
        self.steps = 0
        self.tokens = None

    def on_step_end(self, args, state, control, **kw):
        now = time.perf_counter()
        if self.t0 is None:
            self.t0 = now
        else:
            self.steps += 1
            self.t1 = now

    def on_train_end(self, args, state, control, **kw):
        # the tokens the trainer itself counted (trl logs num_tokens: rows differ in length and order)
        seen = [float(h["num_tokens"]) for h in state.log_history if "num_tokens" in h]
        self.tokens = seen[-1] - seen[0] if len(seen) == self.steps + 1 else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trainer", choices=["condtune", "trl"], required=True)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--tag-contrast", type=float, default=0.0)
    ap.add_argument("--kl-coef", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    corpus = vader_corpus(["movie"]).head(a.steps * a.batch_size * 2)
    binning = Binning.fit(corpus["human_mean"].to_numpy(), k=5)
    card = TagCard(binning, TagFormat())
    df = corpus.assign(score_bin=binning.assign(corpus["human_mean"].to_numpy()))
    df["tagged_prompt"] = [tagged_prompt(card, p, bin_index=int(b)) for b, p in zip(df["score_bin"], df["prompt"])]
    model, tok = load_causal_lm("smollm2-135m")
    clock = StepClock()
    with tempfile.TemporaryDirectory() as out:
        if a.trainer == "condtune":
            s = SFTSettings(
                max_steps=a.steps,
                per_device_train_batch_size=a.batch_size,
                max_length=a.max_length,
                save_steps=10**6,
                tag_contrast=a.tag_contrast,
                kl_coef=a.kl_coef,
            )
            train_conditional(model, tok, df, card=card, s=s, out_dir=out, base="smollm2-135m", callbacks=[clock])
        else:
            import datasets
            from trl import SFTConfig, SFTTrainer

            rows = datasets.Dataset.from_dict(
                {"prompt": df["tagged_prompt"].tolist(), "completion": [" " + c for c in df["completion"]]}
            )
            args = trainer_args(
                SFTConfig,
                output_dir=out,
                max_steps=a.steps,
                per_device_train_batch_size=a.batch_size,
                learning_rate=1e-4,
                max_length=a.max_length,
                save_strategy="no",
                completion_only_loss=True,
                logging_steps=max(1, a.steps // 4),
            )
            SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tok, callbacks=[clock]).train()
    # the tokens trained on in the timed steps: every row is one example of at most max_length tokens
    lengths = [
        min(a.max_length, len(tok(p + " " + c + tok.eos_token, add_special_tokens=False)["input_ids"]))
        for p, c in zip(df["tagged_prompt"], df["completion"])
    ]
    mean_len = sum(lengths) / len(lengths)
    seconds = clock.t1 - clock.t0
    print(
        json.dumps(
            {
                "trainer": a.trainer,
                "tag_contrast": a.tag_contrast,
                "kl_coef": a.kl_coef,
                "timed_steps": clock.steps,
                "s_per_step": round(seconds / clock.steps, 3),
                "tokens_per_s": round(clock.steps * a.batch_size * mean_len / seconds, 1),
                "counted_tokens_per_s": None if clock.tokens is None else round(clock.tokens / seconds, 1),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "precision": precision_kwargs(),
            }
        )
    )


if __name__ == "__main__":
    main()
