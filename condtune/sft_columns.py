"""The extra columns of a conditional-SFT row, beside trl's ``input_ids``/``labels``: written by
:func:`condtune.policy.sft_dataset`, read by :class:`condtune.kl_sft.ConditionalSFTTrainer`. Their own
module so that both can import them (kl_sft loads trl; policy imports it only when it trains)."""

REF_COLUMNS = ("ref_input_ids", "ref_labels")
ALT_COLUMNS = ("alt_input_ids", "alt_labels", "alt_weight", "alt_target")
"""the columns sft_dataset adds for the KL term's reference and for the tag contrast"""
