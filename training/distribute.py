"""tf.distribute strategies for training: one device, MirroredStrategy over one host's GPUs, or
MultiWorkerMirroredStrategy over the hosts named in TF_CONFIG."""
from __future__ import annotations

import tensorflow as tf

from common.errors import UserError
from training.config import check_tf_config


def make_strategy(name: str) -> tf.distribute.Strategy:
    """auto: Mirrored over all GPUs (one device on CPU); multiworker: MultiWorkerMirrored from TF_CONFIG."""
    if name == "multiworker":                           # must come before anything initialises the TF context
        check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device" or (name == "auto" and len(gpus) <= 1):
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name in ("auto", "mirrored"):
        return tf.distribute.MirroredStrategy()
    raise UserError(f"--strategy {name} must be auto, mirrored, multiworker or one_device")


def _task(strategy: tf.distribute.Strategy) -> tuple[str, int, dict[str, list[str]]] | None:
    """(task type, task index, cluster spec) of a MultiWorkerMirroredStrategy from TF_CONFIG; None on one host."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return None
    return resolver.task_type, resolver.task_id or 0, resolver.cluster_spec().as_dict()


def _workers(spec: dict[str, list[str]]) -> int:
    return sum(len(v) for k, v in spec.items() if k in ("chief", "worker"))


def worker_info(strategy: tf.distribute.Strategy) -> tuple[bool, int, int]:
    """(is_chief, task index, number of workers). Worker 0 is the chief unless the cluster names one."""
    task = _task(strategy)
    if task is None:
        return True, 0, 1
    task_type, task_id, spec = task
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in spec)
    return chief, task_id, _workers(spec)


def input_pipeline(strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """(index of this worker's input pipeline, number of pipelines): one pipeline per worker (see
    `pipeline_index`); (0, 1) for a strategy on one host."""
    task = _task(strategy)
    return (0, 1) if task is None else pipeline_index(*task)


def pipeline_index(task_type: str, task_id: int, spec: dict[str, list[str]]) -> tuple[int, int]:
    """(input pipeline index, pipelines) of a task of a TF_CONFIG cluster: the chief first when the cluster
    names one, then the workers by index, so that worker 0 does not read the chief's shard."""
    return task_id + (len(spec.get("chief", [])) if task_type == "worker" else 0), _workers(spec)
