"""Training StyleGAN2 under tf.distribute: `config` (options, presets, validation), `loss` (the objective as
phases), `loss_scale` (float16 loss scaling), `augment` (ADA's augmentation pipeline), `state` (counters
and checkpoint), `stats` (statistics and logs), `distribute` (strategies) and `training_loop` (the trainer).

Depends on `common`, `datasets` and `networks`; metrics are passed in by the caller, never imported.
"""
