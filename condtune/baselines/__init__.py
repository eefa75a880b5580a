"""Baselines that the score-conditioned policy is compared against.

``ppo``             condtune's own PPO with a KL-penalised reward: setup and resume, rollout,
                    advantages, the clipped update, the training loop (the algorithm, one file).
``ppo_config``      its settings (``PPOConfig``) and the default prompts of the baseline commands.
``ppo_models``      the actor-critic (value head on the policy's backbone) and the frozen reference.
``ppo_rewards``     the reward: a saved scorer, or a built-in toy reward.
``ppo_checkpoint``  ``PPOState``, its checkpoints (exact resume) and the final policy.
``ppo_report``      metrics.jsonl, the sample table, the first/last summary.
``rl_math``         pure PPO maths (masked statistics, KL-penalised rewards, GAE, clipped losses,
                    KL controllers); no models, no I/O.
``dpo`` · ``rloo`` · ``best_of_n``  trl wrappers.
"""
