"""The explorer's renderer: one generator, the edit directions offered for it, and `render(state)` computed
exactly as run_generator.py computes the same image (same seed -> z, truncation, mixing, edit and walk code,
and the same batch composition, since the CPU kernels may round differently for another batch size).

The generator is not thread-safe, so every TensorFlow call runs under one lock; finished PNGs are cached.
A view of an uploaded photo (explorer.photos) starts from its projected w+ and renders with its optimised noise
maps, installed in the generator for that render only (under the lock) and then replaced by the network's own.
"""
from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from common.errors import UserError
from explorer.photos import Photo, Photos
from explorer.state import FRAMES, GROUPS, BadRequest, State, command_for
from latent import directions as dirs
from latent.mixing import STYLE_GROUPS, layer_resolution
from latent.runner import LatentRunner, sample_w
from latent.walk import walk


@dataclass(frozen=True)
class Direction:
    """An edit direction offered by the explorer: name as in --edit (age, sefa:0), unit vector, 1-std scale."""

    name: str
    vector: np.ndarray
    scale: float
    source: str            # "file" (read from --directions) or "computed" (SeFa at start-up)


def find_directions(G, net_id: str, folder: Path, sefa_count: int = 5, sample: np.ndarray | None = None,
                    log=print) -> list[Direction]:
    """The directions in `folder` made for this network (others are skipped with a line on `log`): one per
    single-direction file, the first `sefa_count` of each set; if there is no sefa.npy, the first `sefa_count`
    SeFa directions computed from the weights with the scales run_generator.py --mode directions saves."""
    out: list[Direction] = []
    names = sorted(p.stem for p in folder.glob("*.npy")) if folder.is_dir() else []
    for name in names:
        try:
            arr = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            comps = [None] if arr.ndim == 1 else list(range(min(sefa_count, len(arr))))
            for comp in comps:
                vec, scale = dirs.load_direction(folder, name, comp, net_id, G.w_dim)
                out.append(Direction(name if comp is None else f"{name}:{comp}", vec, scale, "file"))
        except (UserError, OSError, ValueError) as exc:
            log(f"explorer: skipping {folder / name}.npy: {exc}")
    if "sefa" not in names and sefa_count > 0:
        found, _ = dirs.sefa_directions(G)
        w = sample if sample is not None else sample_w(LatentRunner(G, batch=8), 10000)
        scales = dirs.direction_scales(found, w)
        out += [Direction(f"sefa:{k}", found[k], float(scales[k]), "computed")
                for k in range(min(sefa_count, len(found)))]
    return out


class Renderer:
    """Renders explorer states to PNG for one generator; safe to call from many threads."""

    def __init__(self, G, network: str, net_id: str, directions: list[Direction], directions_folder: str = "directions",
                 class_idx: int | None = None, cache_size: int = 512, photos: Photos | None = None) -> None:
        self.G, self.network, self.net_id = G, network, net_id
        self.photos = photos
        self.no_photos_reason = "photo uploads are off"                  # said by /api/info when photos is None
        self.directions = {d.name: d for d in directions}
        self.directions_folder, self.class_idx = directions_folder, class_idx
        self.runners = {mode: LatentRunner(G, batch=8, noise_mode=mode, class_idx=class_idx)
                        for mode in ("const", "random", "none")}
        self.style_layers = {}
        for g in GROUPS:
            lo, hi = STYLE_GROUPS[g]
            layers = [i for i in range(G.num_ws) if lo <= layer_resolution(i) <= hi]
            if layers:
                self.style_layers[g] = layers
        self.lock = threading.Lock()                                    # every TensorFlow call
        self.cache_lock = threading.Lock()                              # the PNG cache (hits never wait for a render)
        self.cache: OrderedDict[tuple, bytes] = OrderedDict()
        self.cache_size = cache_size
        self.w_cache: dict[tuple, np.ndarray] = {}                      # (seeds, psi) -> w+, used under the lock
        self.renders = 0
        self.own_noise: list[np.ndarray] | None = None                  # the network's noise maps (photos)
        self.own_weights: list[np.ndarray] | None = None                # its synthesis weights (tuned photos)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(self.style_layers)

    def info(self) -> dict:
        """What the page needs to build its controls."""
        return {"network": self.network, "network_id": self.net_id, "resolution": self.G.img_resolution,
                "num_ws": self.G.num_ws, "groups": {g: ls for g, ls in self.style_layers.items()},
                "directions": [{"name": d.name, "source": d.source} for d in self.directions.values()]}

    def command(self, state: State):
        computed = frozenset(n.split(":")[0] for n, d in self.directions.items() if d.source == "computed")
        return command_for(state, self.network, self.directions_folder, self.style_layers, computed, self.class_idx)

    def mapped(self, runner: LatentRunner, seeds: tuple[int, ...], psi: float) -> np.ndarray:
        """runner.seeds(seeds, psi), remembered (the mapping does not depend on the noise mode): a slider that
        moves an edit or the walk maps nothing."""
        key = (seeds, psi)
        w = self.w_cache.get(key)
        if w is None:
            w = self.w_cache[key] = runner.seeds(list(seeds), psi)
            if len(self.w_cache) > 1024:
                self.w_cache.pop(next(iter(self.w_cache)))
        return w

    def photo(self, state: State) -> Photo | None:
        """The finished photo a state shows (None for a seed's view); 404 / 409 when there is none yet."""
        if state.photo is None:
            return None
        if self.photos is None:
            raise BadRequest("this server takes no photos", 404)
        photo = self.photos.require(state.photo)
        if photo.w is None:
            raise BadRequest(f"the photo is not projected yet ({photo.state})", 409)
        return photo

    def ws(self, state: State, runner: LatentRunner, photo: Photo | None = None) -> np.ndarray:
        """w+ [1, num_ws, w_dim] of a state, each step as run_generator.py does it."""
        if photo is not None:                                         # --projected-w: the photo's w+, untruncated
            w = photo.w[None]
            if state.b is not None:
                w = walk(np.concatenate([w, self.mapped(runner, (state.b,), state.psi)]), FRAMES)[state.t][None]
        elif state.b is not None:                                     # --mode interpolate: both seeds in one batch
            w = walk(self.mapped(runner, (state.seed, state.b), state.psi), FRAMES)[state.t][None]
        else:
            w = self.mapped(runner, (state.seed,), state.psi)
        if state.mixing:                                              # --mode style-mix: the column's layers
            layers = sorted(i for g in state.styles for i in self.style_layers[g])
            w = w.copy()
            w[:, layers] = self.mapped(runner, (state.mix,), state.psi)[:, layers]
        for name, v in state.edits:                                   # --edit: strength * scale along the unit vector
            d = self.directions[name]
            w = dirs.edit_ws(w, d.vector, np.array([v, v], np.float32) * d.scale)[:, 0]
        return w

    def image(self, state: State) -> np.ndarray:
        """uint8 [H, W, C] of a state (under the lock)."""
        runner = self.runners[state.noise]
        photo = self.photo(state)
        with self.lock:
            w = self.ws(state, runner, photo)
            self._install(photo)
            try:
                if state.edits and state.b is None and not state.mixing:
                    img = runner.synthesize(np.concatenate([w, w]))[0]   # --edit X..X --steps 2: a batch of two
                else:
                    img = runner.synthesize(w)[0]
            finally:
                self._restore(photo)
            self.renders += 1
        return img

    def _install(self, photo: Photo | None) -> None:
        """Draw with the photo's noise maps and tuned weights (under the lock), as run_generator.py --projected-w
        draws with its tuned.keras."""
        from latent.projector import apply_noise, noise_variables
        if photo is None:
            return
        if photo.noise:
            if self.own_noise is None:
                self.own_noise = [v.numpy() for v in noise_variables(self.G)]
            apply_noise(self.G, photo.noise)
        if photo.tuned is not None:
            if self.own_weights is None:
                self.own_weights = [v.numpy() for v in self.G.synthesis.trainable_weights]
            for v, value in zip(self.G.synthesis.trainable_weights, photo.tuned):
                v.assign(value)

    def _restore(self, photo: Photo | None) -> None:
        from latent.projector import apply_noise
        if photo is not None and photo.noise:
            apply_noise(self.G, self.own_noise)
        if photo is not None and photo.tuned is not None:
            for v, value in zip(self.G.synthesis.trainable_weights, self.own_weights):
                v.assign(value)

    def tuned_network(self, photo: Photo) -> bytes:
        """The photo's tuned generator as a .keras file (what run_generator.py --mode project writes as
        tuned.keras)."""
        import tempfile
        from pathlib import Path

        from latent.modes import save_bundle_tuned
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            self._install(photo)
            try:
                path = save_bundle_tuned(Path(tmp) / "tuned.keras", self.G, self.net_id, "explorer upload",
                                         photo.steps, photo.tune_steps)
            finally:
                self._restore(photo)
            return path.read_bytes()

    def warm(self) -> None:
        """Trace the generator for every batch shape a view can need (one face, an edit pair, a walk's two keys)."""
        self.png(State())
        if self.directions:
            self.png(State(edits=((next(iter(self.directions)), 1.0),)))
        self.png(State(b=1, t=30))

    def png(self, state: State) -> tuple[bytes, float, bool]:
        """(PNG bytes with the view and its command in text chunks, render milliseconds, cache hit)."""
        key = tuple(sorted(state.query().items()))
        if state.noise != "random":
            with self.cache_lock:
                hit = self.cache.get(key)
                if hit is not None:
                    self.cache.move_to_end(key)
                    return hit, 0.0, True
        t0 = time.perf_counter()
        img = self.image(state)
        ms = (time.perf_counter() - t0) * 1000
        meta = PngImagePlugin.PngInfo()
        query = {k: v for k, v in state.query().items() if k != "photo"}       # the token stays with its uploader
        for k, v in {**query, "network": self.net_id, "command": self.command(state).command}.items():
            meta.add_text(k, v)
        pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
        buf = io.BytesIO()
        pil.save(buf, format="PNG", pnginfo=meta, compress_level=1)
        data = buf.getvalue()
        if state.noise != "random":
            with self.cache_lock:
                self.cache[key] = data
                while len(self.cache) > self.cache_size:
                    self.cache.popitem(last=False)
        return data, ms, False
