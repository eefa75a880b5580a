"""Baselines that the score-conditioned policy is compared against.

``rl_math``  pure PPO maths (masked statistics, KL-penalised rewards, GAE, clipped losses,
             KL controllers); no models, no I/O.
``ppo``      PPO with a KL-penalised reward: value head on the policy's backbone, frozen
             reference, rollouts, minibatch epochs, checkpoints and resume.
"""
