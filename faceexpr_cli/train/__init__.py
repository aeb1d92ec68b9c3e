"""Training: the joint expression + reconstruction run and the next-token predictor run.

Layout: ``data`` (clip sources and the step-seeded batch sampler), ``token_cache`` (frozen tokenizer outputs on
disk), ``losses``, ``schedule`` (one piecewise-linear schedule for LR and loss weights), ``checkpoint`` (run
directories), ``monitor`` (progress, CSV, TensorBoard), ``evaluate`` (videos and token plots), ``distributed``,
``tasks`` (what one step computes for each kind of run) and ``runner`` (setup / train / evaluate / save).
"""
