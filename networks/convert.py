"""Weight conversion between official StyleGAN2 state dicts (PyTorch names or TF1 names) and our models."""
from __future__ import annotations

import numpy as np
import keras

from networks.stylegan2 import official_state
from common.errors import UserError


def to_ours(name: str, value: np.ndarray, target_shape: tuple) -> np.ndarray:
    """Official layout -> ours: dense [out, in] -> [in, out]; conv [O, I, kh, kw] -> [kh, kw, I, O];
    const [C, H, W] -> [H, W, C]; everything else unchanged."""
    value = np.asarray(value, np.float32)
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "weight" and value.ndim == 2:
        value = value.T
    elif leaf == "weight" and value.ndim == 4:
        value = value.transpose(2, 3, 1, 0)
    elif leaf == "const":
        value = value.transpose(1, 2, 0)
    if tuple(value.shape) != tuple(target_shape):
        raise UserError(f"{name}: shape {list(value.shape)} does not fit the network's {list(target_shape)}")
    return value


def to_official(name: str, value: np.ndarray) -> np.ndarray:
    """Inverse of to_ours."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "weight" and value.ndim == 2:
        return value.T
    if leaf == "weight" and value.ndim == 4:
        return value.transpose(3, 2, 0, 1)
    if leaf == "const":
        return value.transpose(2, 0, 1)
    return value


def load_official_state(model: keras.layers.Layer, state: dict[str, np.ndarray], strict: bool = True) -> None:
    """Assign official-named weights (PyTorch layouts) to `model`; strict: every name must match exactly."""
    ours = official_state(model)
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    if strict and (missing or unexpected):
        raise UserError(f"weights do not match the network: missing {missing[:5]}{'...' if len(missing) > 5 else ''}"
                         f", unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    for name, var in ours.items():
        if name in state:
            var.assign(to_ours(name, state[name], var.shape))


def export_official_state(model: keras.layers.Layer) -> dict[str, np.ndarray]:
    """Our weights under official names in official (PyTorch) layouts."""
    return {name: to_official(name, np.asarray(var.numpy())) for name, var in official_state(model).items()}
