import numpy as np
import pytest

from condtune.relabel import TagCard
from condtune.tags import Binning, TagFormat


def test_quantile_bins_equal_counts_and_persist():
    scores = np.linspace(-4, 4, 1000)
    b = Binning.fit(scores, k=5)
    assert b.k == 5 and len(b.edges) == 4 and b.counts == [200] * 5
    assert np.allclose(b.edges, [-2.4, -0.8, 0.8, 2.4], atol=0.01)
    again = Binning.from_dict(b.to_dict())
    assert again.edges == b.edges and again.centers == b.centers
    assert again.assign([-10, -2.5, 0.0, 2.39, 10]).tolist() == [0, 0, 2, 3, 4]


def test_uniform_bins_and_errors():
    b = Binning.fit([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], k=2, method="uniform")
    assert b.edges == [5.0]
    with pytest.raises(ValueError, match="too few distinct values"):
        Binning.fit([1, 1, 1, 1, 1, 2], k=4)
    with pytest.raises(ValueError, match="at least 2 bins"):
        Binning.fit([1, 2, 3], k=1)


def test_text_and_token_formats():
    text = TagFormat()
    assert text.prefix(4, 5, {"domain": "movie"}) == "Domain: movie.\nRating: 4 out of 5 stars.\n"
    assert text.special_tokens(5) == []
    tok = TagFormat(style="token")
    assert tok.prefix(2, 5, {"domain": "movie"}) == "<|domain=movie|><|score_2|>\n"
    assert tok.special_tokens(3, {"domain": ["b", "a", "a"]}) == [
        "<|score_1|>",
        "<|score_2|>",
        "<|score_3|>",
        "<|domain=a|>",
        "<|domain=b|>",
    ]


def test_card_maps_requested_score_to_bin():
    card = TagCard(Binning(edges=[-1.0, 1.0], centers=[-2.0, 0.0, 2.0]), attributes={"domain": ["movie"]})
    assert card.prefix(score=3.2) == "Rating: 3 out of 3 stars.\n"
    assert card.prefix(score=-1.0) == "Rating: 2 out of 3 stars.\n"  # an edge belongs to the bin above
    assert card.prefix(bin_index=0, attrs={"domain": "movie"}).startswith("Domain: movie.\n")
    with pytest.raises(ValueError, match="unknown tag 'style'"):
        card.prefix(score=0, attrs={"style": "short"})
    assert TagCard.from_dict(card.to_dict()).binning.edges == [-1.0, 1.0]


def test_a_tag_style_typo_is_an_error_not_text_tags():
    import pytest

    from condtune.commands.relabel import RelabelConfig
    from condtune.config import ConfigError, parse

    with pytest.raises(ValueError, match="'tokens': expected 'text' or 'token'"):
        TagFormat(style="tokens")
    with pytest.raises(ConfigError, match="tag_style"):
        parse(RelabelConfig, ["tag_style=tokens"])
