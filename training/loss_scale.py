"""Dynamic loss scaling for float16 training, in one place.

Every backward pass (the outer one and the nested R1 / path-length ones) runs on the objective times the
scale and divides the gradients by it, so small float16 gradients do not underflow. The scale starts at
2^10, halves (never below 1) after a step with non-finite gradients and doubles after 1000 finite steps in
a row, up to 2^24 (the cap of standard dynamic loss scaling, e.g. apex's max_loss_scale: beyond it a float16
gradient that did not overflow gains no precision). Disabled (float32, bfloat16) it is the identity and
adds no operations.
"""
from __future__ import annotations

import tensorflow as tf

INITIAL_LOSS_SCALE = 2.0 ** 10      # first loss scale
LOSS_SCALE_GROWTH_STEPS = 1000      # doubled after this many finite steps in a row
MAX_LOSS_SCALE = 2.0 ** 24          # never doubled beyond this


class LossScaler:
    """`scale(objective)`, `unscale(grad)` and `update(finite)`; its variables are checkpointed by the caller."""

    def __init__(self,
                 enabled: bool = False,                        # float16 training
                 initial: float = INITIAL_LOSS_SCALE,          # first scale
                 growth_steps: int = LOSS_SCALE_GROWTH_STEPS,  # finite steps in a row before doubling
                 ) -> None:
        self.enabled, self.growth_steps = enabled, growth_steps
        only_first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.loss_scale = tf.Variable(initial if enabled else 1.0, trainable=False, name="loss_scale",
                                      aggregation=only_first)
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps", aggregation=only_first)

    def scale(self, objective: tf.Tensor) -> tf.Tensor:
        """The objective times the loss scale (identity when disabled)."""
        return objective * self.loss_scale if self.enabled else objective

    def unscale(self, grad: tf.Tensor | None) -> tf.Tensor | None:
        """A gradient of a scaled objective divided by the scale (None stays None)."""
        return grad if grad is None or not self.enabled else grad / self.loss_scale

    def update(self, finite: tf.Tensor) -> None:
        """After a step (cross-replica context): halve on overflow, double after `growth_steps` good steps."""
        if not self.enabled:
            return
        ok = finite > 0.5
        good = tf.where(ok, self.good_steps + 1, tf.zeros_like(self.good_steps))
        grow = good >= self.growth_steps
        scale = self.loss_scale
        grown = tf.minimum(scale * 2.0, MAX_LOSS_SCALE)
        self.loss_scale.assign(tf.where(ok, tf.where(grow, grown, scale), tf.maximum(scale * 0.5, 1.0)))
        self.good_steps.assign(tf.where(grow, tf.zeros_like(good), good))
