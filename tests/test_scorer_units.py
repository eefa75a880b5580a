import math

import numpy as np
import pandas as pd
import pytest
import torch

from condtune.metrics import distinct_n, pairwise_accuracy, split_half_reliability
from condtune.scorer import bradley_terry_loss, regression_loss
from condtune.scorer_training import normalise_ratings


def test_bradley_terry_loss_values():
    r = torch.tensor([0.0, 2.0])
    assert math.isclose(
        float(bradley_terry_loss(r, torch.zeros(2))), (math.log(2) + math.log(1 + math.exp(-2))) / 2, rel_tol=1e-6
    )
    assert float(bradley_terry_loss(torch.tensor([10.0]), torch.tensor([-10.0]))) < 1e-6


def test_regression_loss_weights():
    pred, tgt = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 3.0])
    assert float(regression_loss(pred, tgt)) == 5.0
    assert float(regression_loss(pred, tgt, torch.tensor([3.0, 1.0]))) == 3.0


def ratings():
    # rater b rates everything 2 points higher than rater a: per-rater normalisation removes that.
    return pd.DataFrame(
        {
            "item_id": ["x", "x", "y", "y", "z", "z"],
            "prompt": [""] * 6,
            "completion": ["X", "X", "Y", "Y", "Z", "Z"],
            "score": [-1.0, 1.0, 0.0, 2.0, 1.0, 3.0],
            "rater": ["a", "b", "a", "b", "a", "b"],
        }
    )


def test_normalise_item_and_none():
    item = normalise_ratings(ratings(), "item").set_index("item_id")
    assert item.loc["x", "target"] == 0.0 and item.loc["z", "target"] == 2.0 and item.loc["x", "weight"] == 2
    assert len(normalise_ratings(ratings(), "none")) == 6


def test_normalise_rater_removes_offsets():
    t = normalise_ratings(ratings(), "rater").set_index("item_id")["target"]
    assert t["x"] < t["y"] < t["z"]
    assert np.isclose(t["y"], ratings()["score"].mean())  # the middle item sits at the global mean
    with pytest.raises(ValueError, match="needs a rater id"):
        normalise_ratings(ratings().assign(rater=None), "rater")


def test_metrics():
    assert pairwise_accuracy([1, 2, 3], [10, 20, 30]) == 1.0
    assert pairwise_accuracy([3, 2, 1], [10, 20, 30]) == 0.0
    perfect = split_half_reliability([[v, v, v, v] for v in range(10)])
    assert perfect["split_half_r"] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = split_half_reliability([list(rng.normal(0, 1, 10)) for _ in range(300)])
    assert abs(noisy["split_half_r"]) < 0.2
    assert distinct_n(["a b a b"], 2) == 2 / 3


def test_scorer_training_is_reproducible(ratings_file, tiny_encoder):
    """The same config twice gives the same scorer (the head's init is seeded): benchmark pieces
    trained in different sessions are judged by the same raters."""
    from condtune.ratings import PointwiseSpec
    from condtune.scorer import OptimConfig
    from condtune.scorer_training import ScorerTrainConfig, train_pointwise

    cfg = ScorerTrainConfig(
        ratings=str(ratings_file),
        backbone=str(tiny_encoder),
        columns=PointwiseSpec(rater_col="rater", item_col="item_id"),
        optim=OptimConfig(num_train_epochs=1.0, per_device_train_batch_size=8, learning_rate=1e-3),
    )
    texts = ["The film was great and lovely.", "The film was dull and bad."]
    a, b = (train_pointwise(cfg)[0].score(texts) for _ in range(2))
    assert (a == b).all()


def test_scorer_head_is_safetensors_and_old_head_pt_still_loads(tmp_path, tiny_encoder):
    from condtune.scorer import Scorer

    s = Scorer.new(str(tiny_encoder), "regression", "item")
    out = s.save(tmp_path / "s")
    assert (out / "head.safetensors").exists() and not (out / "head.pt").exists()
    texts = ["A fine film.", "Dull."]
    want = Scorer.load(out).score(texts)
    torch.save(Scorer.load(out).model.head.state_dict(), out / "head.pt")  # a scorer saved by an older condtune
    (out / "head.safetensors").unlink()
    assert np.allclose(Scorer.load(out).score(texts), want, atol=1e-6)
    (out / "head.pt").unlink()
    with pytest.raises(FileNotFoundError, match="scorer head missing"):
        Scorer.load(out)


def test_scorer_lives_on_the_policy_device(tmp_path, tiny_encoder, monkeypatch):
    """A scorer goes where ``condtune.modeling.device()`` says (a GPU when there is one), and ``raw``
    feeds it inputs on its own device: shown with the meta device standing in for a GPU."""
    import condtune.scorer as S

    saved = S.Scorer.new(str(tiny_encoder), "regression", "item").save(tmp_path / "s")
    monkeypatch.setattr(S, "device", lambda: torch.device("meta"))
    for scorer in (S.Scorer.new(str(tiny_encoder), "regression", "item"), S.Scorer.load(saved)):
        assert {p.device.type for p in scorer.model.parameters()} == {"meta"}
        seen = []

        def forward(ids, mask, seen=seen):
            seen.append({ids.device.type, mask.device.type})
            return ids[:, 0].float()

        scorer.model.forward = forward
        scorer.raw(["A fine film.", "Dull."])
        assert seen == [{"meta"}]
