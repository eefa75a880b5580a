"""condtune: score-conditioned fine-tuning of language models.

The main path: human ratings -> scorer -> relabel with score tags -> conditional SFT with the
tags before the answer -> generate at a requested score. See README.md.
"""

__version__ = "0.1.0"
