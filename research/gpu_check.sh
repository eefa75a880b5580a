#!/usr/bin/env bash
# The GPU paths on one CUDA machine, on a tiny random model (no weights to fetch beyond the tokenizer):
#   bash research/gpu_check.sh [workdir]      (docs/benchmarks.md section 5)
# 1. conditional SFT under the shipped FSDP2 config (one process) and the same run without FSDP:
#    both must write a policy with the same tensors (a tied output embedding saved once);
# 2. the FSDP run interrupted after its first checkpoint resumes to exactly the unbroken run's weights;
# Then run the test suite there too (`python -m pytest -q`): the code puts models on CUDA when it sees one.
set -euo pipefail
W=${1:-runs/gpu_check}
mkdir -p "$W"
python - "$W/tagged.jsonl" <<'PY'
import sys
import pandas as pd
from condtune.relabel import TagCard, tagged_prompt, write_tagged
from condtune.tags import Binning, TagFormat

card = TagCard(Binning(edges=[0.0], centers=[-1.0, 1.0], counts=[8, 8]), TagFormat())
words = ["Good.", "Bad.", "Great fun.", "Awful.", "Fine film.", "Dull.", "Loved it.", "Hated it."]
df = pd.DataFrame({"prompt": ["Review:"] * 16, "completion": words * 2, "score_bin": [1, 0] * 8})
df["tagged_prompt"] = [tagged_prompt(card, p, bin_index=b) for b, p in zip(df["score_bin"], df["prompt"])]
write_tagged(df, card, sys.argv[1])
PY
T="data=$W/tagged.jsonl model=tiny-lm sft.max_steps=6 sft.save_steps=3 sft.per_device_train_batch_size=4 sft.learning_rate=1e-3 sft.max_length=32"
FSDP="accelerate launch --config_file condtune/configs/accelerate/fsdp.yaml --num_processes 1 -m condtune train $T"
rm -rf "$W/fsdp" "$W/plain" "$W/resumed"
$FSDP out="$W/fsdp"
condtune train $T out="$W/plain"
condtune generate --model "$W/fsdp" --score 1 --prompt "Review:" -n 2
$FSDP out="$W/resumed"
rm -rf "$W/resumed/checkpoints/checkpoint-6" "$W/resumed/model.safetensors" "$W/resumed/condtune_policy.json" "$W/resumed/train_stats.json"
$FSDP out="$W/resumed"   # resumes from checkpoint-3
python - "$W" <<'PY'
import sys
from safetensors.torch import load_file

w = sys.argv[1]
fsdp, plain, resumed = (load_file(f"{w}/{r}/model.safetensors") for r in ("fsdp", "plain", "resumed"))
assert fsdp.keys() == plain.keys() == resumed.keys(), sorted(set(fsdp) ^ set(plain))
print("FSDP vs plain, largest weight difference:", max(float((fsdp[k] - plain[k]).abs().max()) for k in fsdp))
assert all((fsdp[k] == resumed[k]).all() for k in fsdp), "the resumed FSDP run ended elsewhere"
print("resumed FSDP run == unbroken FSDP run: yes")
PY
