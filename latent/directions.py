"""Edit directions in W: closed-form (SeFa) and sampled (GANSpace) directions, strengths in standard
deviations of w, and the directions file format.

A direction file is `<folder>/<name>.npy` (float32 [w_dim], or [k, w_dim] for a set such as SeFa's) with
`<name>.json` beside it: the network it was made for (`network`: name and weight fingerprint), the method,
`scales` (standard deviation of sampled w along each direction: the unit of edit strengths) and figures.
Both files are written atomically; a direction is refused for any network but its own.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.files import atomic_path, atomic_write, check_name


def network_id(name: str, G) -> str:
    """'<name>:<8 hex>': a fingerprint of the weights (w_avg and the 4x4 block), for metadata and matching."""
    h = hashlib.sha256(np.asarray(G.mapping.w_avg.numpy()).tobytes())
    for v in G.synthesis.b4.conv1.official_params().values():
        h.update(np.asarray(v.numpy()).tobytes())
    return f"{name}:{h.hexdigest()[:8]}"


def affine_layers(G) -> list:
    """The style-affine FC layers in w+ order: (official name, layer) for conv and ToRGB layers of every block."""
    out = []
    for res in G.synthesis.resolutions:
        block = getattr(G.synthesis, f"b{res}")
        for name in ("conv0", "conv1", "torgb"):
            if hasattr(block, name):
                out.append((f"synthesis.b{res}.{name}.affine", getattr(block, name).affine))
    return out


def sefa_directions(G) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form directions (SeFa): eigenvectors of A A^T, A the column-normalised concatenation of all
    style-affine weights [w_dim, sum of channels].

    Returns (directions [w_dim, w_dim] unit rows, largest eigenvalue first; eigenvalues [w_dim]).
    """
    A = np.concatenate([np.asarray(fc.weight.numpy(), np.float64) for _, fc in affine_layers(G)], axis=1)
    A = A / np.linalg.norm(A, axis=0, keepdims=True)                     # [w_dim, K]
    values, vectors = np.linalg.eigh(A @ A.T)                             # ascending
    order = np.argsort(values)[::-1]
    return vectors[:, order].T.astype(np.float32), values[order].astype(np.float32)


def ganspace_directions(w: np.ndarray, k: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal components of sampled w [n, w_dim] (GANSpace): (directions [k, w_dim] unit rows,
    standard deviations [k] along them, mean [w_dim])."""
    mean = w.mean(0)
    _, s, vt = np.linalg.svd(w - mean, full_matrices=False)
    k = min(k, vt.shape[0])
    return vt[:k].astype(np.float32), (s[:k] / np.sqrt(max(len(w) - 1, 1))).astype(np.float32), mean


def direction_scales(directions: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Standard deviation of sampled w [n, w_dim] along each unit direction [k, w_dim] -> [k]: the unit in
    which edit strengths are given (--edit age=-3..3 moves three standard deviations either way)."""
    return ((w - w.mean(0)) @ directions.T).std(0).astype(np.float32)


def edit_ws(ws: np.ndarray, direction: np.ndarray, strengths: np.ndarray) -> np.ndarray:
    """w+ [N, num_ws, w_dim] moved by each strength along `direction` [w_dim] (in w units), on every layer
    -> [N, S, num_ws, w_dim]."""
    return ws[:, None] + strengths[None, :, None, None] * direction[None, None, None, :]


MAX_STRENGTH = 100.0        # |edit strength| in standard deviations of w (faces leave the data long before)


def parse_edit(spec: str) -> tuple[str, int | None, float, float]:
    """'age=-3..3' or 'sefa:0=-5..5' -> (name, component or None, lo, hi)."""
    m = re.fullmatch(r"\s*([A-Za-z_][\w-]*)(?::(\d+))?\s*=\s*(-?\d+(?:\.\d*)?)\s*\.\.\s*(-?\d+(?:\.\d*)?)\s*", spec)
    if not m:
        raise UserError(f"bad --edit '{spec}': use NAME=LO..HI, e.g. age=-3..3 or sefa:0=-5..5")
    lo, hi = float(m[3]), float(m[4])
    if not (abs(lo) <= MAX_STRENGTH and abs(hi) <= MAX_STRENGTH):
        raise UserError(f"--edit {m[1]}: strengths go from -{MAX_STRENGTH:g} to {MAX_STRENGTH:g} standard deviations "
                        "of w (-3..3 is a strong edit)")
    return m[1], None if m[2] is None else int(m[2]), lo, hi


# ------------------------------------------------------------------------------------------ the file format
def save_directions(folder: str | Path, name: str, directions: np.ndarray, info: dict) -> Path:
    """<folder>/<name>.npy ([w_dim] or [k, w_dim]) and <name>.json (info plus the shape), each atomically."""
    folder = Path(folder)
    check_name(name, "direction name")
    directions = np.asarray(directions, np.float32)
    with atomic_path(folder / f"{name}.npy") as tmp:
        np.save(tmp, directions)
    with atomic_write(folder / f"{name}.json") as f:
        f.write(json.dumps({**info, "shape": list(directions.shape)}, indent=2) + "\n")
    return folder / f"{name}.npy"


def direction_path(folder: str | Path, name: str) -> Path:
    """<folder>/<name>.npy if it exists; else a one-line error saying how to make it."""
    path = Path(folder) / f"{name}.npy"
    if not path.exists():
        raise UserError(f"no direction {path}: make it with --mode directions or --mode learn-direction (or "
                        "point --directions at its folder)")
    return path


def load_direction(folder: str | Path, name: str, component: int | None, net_id: str, w_dim: int,
                   strengths: tuple[float, float] = (-3.0, 3.0)) -> tuple[np.ndarray, float]:
    """(unit direction [w_dim] float32, scale) of `name` (component `component` of a set) for the network
    `net_id`; refuses a file made for another network, a malformed file and a wrong component."""
    path = direction_path(folder, name)
    lo, hi = strengths
    try:
        dirs = np.load(path, allow_pickle=False)
        info_path = path.with_suffix(".json")
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"{path}: not a readable direction file ({exc})") from None
    if not isinstance(info, dict):
        raise UserError(f"{info_path}: not a direction's description (a JSON object is expected, got "
                        f"{type(info).__name__}); remake it with --mode learn-direction or --mode directions")
    if dirs.dtype.kind not in "fiu" or dirs.ndim not in (1, 2) or dirs.size == 0:
        raise UserError(f"{path}: expected real numbers [N, w_dim] or [w_dim], got {dirs.dtype} {list(dirs.shape)}")
    made_for = str(info.get("network", ""))
    if made_for and made_for.split(":")[-1] != net_id.split(":")[-1]:
        raise UserError(f"{path} was made for network {made_for}, not {net_id}: directions only apply to the "
                        "network they were made for")
    count = len(dirs) if dirs.ndim == 2 else 1
    scales = info.get("scales") or [1.0] * count
    try:
        scales = [float(v) for v in scales]
    except (TypeError, ValueError):
        scales = None
    if scales is None or len(scales) != count or not all(np.isfinite(v) and v > 0 for v in scales):
        raise UserError(f"{info_path}: its 'scales' must be {count} positive number(s), one per direction; remake "
                        "it with --mode learn-direction or --mode directions")
    if dirs.ndim == 2:
        if component is None or component >= len(dirs):
            raise UserError(f"{name}.npy holds {len(dirs)} directions: pick one, e.g. --edit {name}:0={lo}..{hi}")
        direction, scale = dirs[component], scales[component]
    else:
        if component is not None:
            raise UserError(f"{name}.npy holds one direction: use --edit {name}={lo}..{hi}")
        direction, scale = dirs, scales[0]
    if direction.shape != (w_dim,):
        raise UserError(f"{name}.npy has shape {direction.shape}, the network's w has {w_dim} dimensions")
    if not np.all(np.isfinite(direction)) or not np.any(direction):
        raise UserError(f"{path}: direction {name} holds NaN, infinite or only zero values; remake it")
    return direction.astype(np.float32), float(scale)
