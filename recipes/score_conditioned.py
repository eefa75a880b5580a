"""Score-conditioned fine-tuning in one readable script, on condtune's Python API.

The same chain as ``condtune quickstart``, step by step, with the recommended recipe (the tag
contrast with condition dropout, decoded anchored on the base model against the mirrored tag).
Copy it and change what you need. On the embedded defaults (from a clone):

    python recipes/score_conditioned.py --output-dir runs/recipe

Your own data: ``--ratings ratings.jsonl`` (text, score[, rater, item_id]) trains the scorer,
``--data texts.jsonl`` (prompt, completion) is what the policy learns to write, ``--model`` any
Hugging Face causal LM id or folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from condtune.generate import ConditionalPolicy
from condtune.modeling import load_causal_lm
from condtune.policy import SFTSettings, train_conditional
from condtune.relabel import relabel, write_tagged
from condtune.sampling import SamplingConfig
from condtune.scorer_training import ScorerTrainConfig, train_or_load
from condtune.tables import load_corpus


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output-dir", default="runs/recipe", help="where the scorer, the tagged data and the policy go")
    p.add_argument(
        "--ratings", default="vader", help="human ratings the scorer learns from ('vader': the embedded ones)"
    )
    p.add_argument("--backbone", default="minilm", help="the scorer's encoder: 'minilm', an HF id or a folder")
    p.add_argument("--data", default="vader", help="texts to relabel and train on ('vader': VADER's --domain texts)")
    p.add_argument("--domain", default="movie", help="with --data vader: tweets, movie, amazon or nyt")
    p.add_argument("--model", default="smollm2-135m", help="the base policy: 'smollm2-135m', an HF id or a folder")
    p.add_argument("--max-train-samples", type=int, default=2000, help="texts to relabel and train on")
    p.add_argument("--num-bins", type=int, default=5, help="score bins (tags)")
    p.add_argument("--max-steps", type=int, default=60, help="SFT steps (60 x 16 rows: about half an epoch of 2,000)")
    p.add_argument("--batch-size", type=int, default=16, help="rows a step")
    p.add_argument("--max-new-tokens", type=int, default=40, help="tokens a generated answer")
    p.add_argument("--prompt", action="append", help="a prompt to generate from (repeat it); default 'Movie review:'")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    out = Path(a.output_dir)

    # 1. A scorer from human ratings (trained once, then loaded from out/scorer).
    scorer_cfg = ScorerTrainConfig(ratings=a.ratings, backbone=a.backbone, output_dir=str(out / "scorer"))
    scorer = train_or_load(scorer_cfg)

    # 2. Relabel: each text gets its score's bin as a tag; the bins' edges are on the raters' scale.
    texts = load_corpus(a.data, domains=[a.domain] if a.data == "vader" else None).head(a.max_train_samples)
    tagged, card = relabel(texts, scorer, num_bins=a.num_bins, source=a.data)
    write_tagged(tagged, card, out / "tagged.jsonl")
    print("bins on the raters' scale:", [round(e, 2) for e in card.binning.edges])

    # 3. Fine-tune with the tag before the answer: the tag contrast teaches what the tag changes, and
    #    condition dropout keeps an untagged branch for the decode.
    model, tokenizer = load_causal_lm(a.model)
    settings = SFTSettings(
        max_steps=a.max_steps,
        per_device_train_batch_size=a.batch_size,
        learning_rate=1e-4,
        max_length=64,
        condition_dropout=0.1,
        tag_contrast=1.0,
    )
    train_conditional(model, tokenizer, tagged, card=card, s=settings, out_dir=out / "policy", base=a.model)

    # 4. Generate at the top and the bottom score: the base model writes, moved by the difference
    #    between the requested tag and the mirrored one.
    policy = ConditionalPolicy.load(out / "policy")
    low, high = policy.card.binning.centers[0], policy.card.binning.centers[-1]
    prompts = a.prompt or ["Movie review:"]
    for target, mirror in ((high, low), (low, high)):
        samples = policy.generate(
            prompts,
            score=target,
            num_return_sequences=2,
            anchored=True,
            guidance_scale=1.0,
            contrast_score=mirror,
            sampling=SamplingConfig(max_new_tokens=a.max_new_tokens),
            seed=0,
            progress=False,
        )
        scores = scorer.score_pairs(
            [p for p, texts in zip(prompts, samples.texts) for _ in texts], [t for ts in samples.texts for t in ts]
        )
        for (prompt, text), achieved in zip([(p, t) for p, ts in zip(prompts, samples.texts) for t in ts], scores):
            print(f"requested {target:+.2f}  achieved {achieved:+.2f}  {prompt} {text!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
