"""Uploaded photos in the explorer: each is decoded, its largest face aligned to the network's framing, then
projected into the network and the network tuned to it (pivotal tuning, latent/tuning.py) by one worker thread
(on its own copy of the generator, so renders go on meanwhile). The photo's views draw with its tuned weights.

A photo lives only in this process's memory, under a random token that only its uploader learns; there is no
way to list photos. At most MAX_PHOTOS are held (the least recently used finished one makes room) and at most
MAX_WAITING wait for the worker; the upload that finds no room is refused (503), never queued unbounded.
"""
from __future__ import annotations

import contextlib
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image


MAX_UPLOAD = 20 << 20             # bytes of one uploaded photo
STEPS_RANGE = (10, 1000)          # projection steps a client may ask for
DEFAULT_STEPS = 300               # the page's default (as run_generator.py --mode project with tuning)
TUNE_STEPS_RANGE = (0, 1000)      # pivotal tuning steps a client may ask for (0: the plain projection)
DEFAULT_TUNE_STEPS = 200          # as run_generator.py --tune_steps
MAX_PHOTOS = 16                   # photos held in memory, finished or not
MAX_WAITING = 4                   # photos waiting for the projection worker
MAX_READING = 2                   # uploads read, decoded and aligned at once; one more is refused (503) first


class UploadError(Exception):
    """An upload refused with an HTTP status (4xx/5xx) and a short message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Cancelled(Exception):
    """Raised inside a projection to stop it (the server is closing)."""


@dataclass
class Photo:
    """One upload: its aligned face and the state of its projection. Fields change under Photos.cond."""

    token: str
    aligned: np.ndarray                     # uint8 [R, R, C]: the face as the network sees it
    faces: int                              # faces found in the photo (the largest is used)
    eye_distance: float                     # px between the eyes in the photo
    steps: int
    tune_steps: int = DEFAULT_TUNE_STEPS    # pivotal tuning steps after the projection
    state: str = "queued"                   # queued | projecting | tuning | done | failed
    step: int = 0                           # steps done, projection and tuning together
    distance: float | None = None           # the projector's image distance at the last step
    ms_per_step: float | None = None
    frame: np.ndarray | None = None         # uint8 [R, R, C]: the projection's latest image
    frame_step: int = -1                    # the step `frame` was taken at
    w: np.ndarray | None = None             # float32 [num_ws, w_dim] when done
    noise: list = field(default_factory=list)   # the optimised noise maps when done
    tuned: list | None = None               # the tuned synthesis weights (G.synthesis.trainable_weights order)
    psnr: dict = field(default_factory=dict)     # dB against the aligned face: {"w": ..., "tuned": ...}
    error: str = ""
    version: int = 0                        # increases with every change (the event stream waits on it)
    used: float = field(default_factory=time.monotonic)

    def status(self) -> dict:
        """What the page is told about the photo (no pixels, no token)."""
        return {"state": self.state, "step": self.step, "steps": self.steps, "tune_steps": self.tune_steps,
                "psnr": {k: round(v, 2) for k, v in self.psnr.items()}, "distance": self.distance,
                "ms_per_step": None if self.ms_per_step is None else round(self.ms_per_step, 1),
                "frame_step": self.frame_step, "faces": self.faces, "eye_distance": round(self.eye_distance, 1),
                "error": self.error, "version": self.version}


def decode_upload(data: bytes, channels: int) -> np.ndarray:
    """uint8 [H, W, channels] of an uploaded file; UploadError 415 when it is not an image, 413 when too large."""
    from common.images import BadImage, open_image, to_array
    if not data:
        raise UploadError(400, "the upload is empty")
    try:
        img = open_image(data)                    # the one size gate of every command: the header, before decoding
    except BadImage as exc:
        if "megapixels" in str(exc):
            raise UploadError(413, f"the photo has {exc}") from None
        raise UploadError(415, f"not an image (JPEG, PNG, WebP, ... are accepted): {str(exc)[:120]}") from None
    try:
        return to_array(img, channels)
    except (BadImage, ValueError, OSError) as exc:
        raise UploadError(415, f"the image cannot be read ({str(exc)[:120]})") from None


class Photos:
    """The uploads of one explorer: `add` aligns and queues a photo, a worker thread projects it."""

    def __init__(self, make_generator: Callable[[], object], resolution: int, channels: int, framing,
                 framing_note: str, log: Callable[[str], None] = print, encoder=None) -> None:
        self.make_generator = make_generator            # a fresh copy of the network, loaded on first use
        self.encoder = encoder                          # latent.encoder.Encoder: the projection's start (or None)
        self.resolution, self.channels = resolution, channels
        self.framing, self.framing_note, self.log = framing, framing_note, log
        self.photos: dict[str, Photo] = {}
        self.cond = threading.Condition()               # guards `photos` and every Photo's fields
        self.align_lock = threading.Lock()              # one face search at a time (MTCNN is not thread-safe)
        self.queue: queue.Queue[Photo | None] = queue.Queue()
        self.closing = False
        self.worker: threading.Thread | None = None
        self.reading = threading.BoundedSemaphore(MAX_READING)   # admission: held from reading a body to its crop

    # ----------------------------------------------------------------------------------------- uploading
    def add(self, data: bytes, steps: int = DEFAULT_STEPS, tune_steps: int = DEFAULT_TUNE_STEPS) -> Photo:
        """Align the largest face of an uploaded photo and queue its projection and tuning; UploadError says why
        not."""
        from common.images import BadImage
        from alignment.faces import align_faces, detect_faces
        for name, value, (lo, hi) in (("steps", steps, STEPS_RANGE), ("tune_steps", tune_steps, TUNE_STEPS_RANGE)):
            if not lo <= value <= hi:
                raise UploadError(400, f"{name} {value} is out of range {lo}..{hi}")
        self._make_room(evict=False)                    # refuse early when full, but free nothing yet
        photo = decode_upload(data, 3)
        with self.align_lock:
            found = detect_faces(photo, largest=True)
            try:
                (crop, face), = align_faces(photo, self.resolution, "largest", self.framing, found)
            except BadImage as exc:
                raise UploadError(422, str(exc).replace(" (--align)", "") + " in the photo") from None
        if self.channels == 1:
            crop = np.asarray(Image.fromarray(crop).convert("L"))[:, :, None]
        item = Photo(secrets.token_urlsafe(16), crop, len(found), face.eye_distance, steps, tune_steps)
        with self.cond:
            self._make_room()
            self.photos[item.token] = item
        self._start_worker()
        self.queue.put(item)
        return item

    @contextlib.contextmanager
    def admit(self):
        """Hold one of MAX_READING places to read, decode and align an upload; 503 at once when none is free or no
        photo could be queued (before the body is read, so refused uploads cost no memory)."""
        self._make_room(evict=False)
        if not self.reading.acquire(blocking=False):
            raise UploadError(503, f"{MAX_READING} photos are being read; try again in a few seconds")
        try:
            yield
        finally:
            self.reading.release()

    def _make_room(self, evict: bool = True) -> None:
        """Forget the least recently used finished photo when MAX_PHOTOS are held (`evict`; else only check
        that one could go); 503 when none can."""
        with self.cond:
            waiting = sum(p.state == "queued" for p in self.photos.values())
            if waiting >= MAX_WAITING:
                raise UploadError(503, f"{waiting} photos are waiting to be projected; try again in a minute")
            if len(self.photos) >= MAX_PHOTOS:
                done = [p for p in self.photos.values() if p.state in ("done", "failed")]
                if not done:
                    raise UploadError(503, "the explorer is busy with other photos; try again in a minute")
                if evict:
                    del self.photos[min(done, key=lambda p: p.used).token]

    def get(self, token: str) -> Photo | None:
        """The photo with this token, or None (never held, or forgotten to make room)."""
        with self.cond:
            photo = self.photos.get(token)
            if photo is not None:
                photo.used = time.monotonic()
            return photo

    def require(self, token: str) -> Photo:
        """The photo with this token; BadRequest 404 saying why it may be gone."""
        photo = self.get(token)
        if photo is None:
            from explorer.state import BadRequest
            raise BadRequest("this photo is not held by the server (it keeps uploads in memory only while it runs, "
                             "the oldest making room for new ones): upload it again", 404)
        return photo

    def wait(self, photo: Photo, version: int, timeout: float) -> dict:
        """The photo's status once its version passes `version` (or after `timeout` seconds)."""
        with self.cond:
            self.cond.wait_for(lambda: photo.version > version or self.closing, timeout)
            return photo.status()

    def _update(self, photo: Photo, **changes) -> None:
        with self.cond:
            for k, v in changes.items():
                setattr(photo, k, v)
            photo.version += 1
            self.cond.notify_all()

    # ------------------------------------------------------------------------------------------ the worker
    def _start_worker(self) -> None:
        with self.cond:
            if self.worker is None:
                self.worker = threading.Thread(target=self._work, name="explorer-projector", daemon=True)
                self.worker.start()

    def _work(self) -> None:
        G = None
        while True:
            photo = self.queue.get()
            if photo is None or self.closing:
                return
            try:
                if G is None:
                    G = self.make_generator()
                self._project(G, photo)
            except Cancelled:
                return
            except Exception as exc:                    # a bug or an odd network: the photo fails, the server lives
                self.log(f"explorer: projection failed: {type(exc).__name__}: {exc}")
                self._update(photo, state="failed", error=f"projection failed: {str(exc)[:200]}")

    def _project(self, G, photo: Photo) -> None:
        from latent.projector import ProjectConfig, apply_noise, default_w_prior, project
        from latent.tuning import TuneConfig, psnr, tune
        self._update(photo, state="projecting")
        started = []                                    # when the first step of each phase (which traces) ended

        def progress(offset: int):
            def on_step(step: int, distance: float, frame: np.ndarray | None) -> None:
                if self.closing:
                    raise Cancelled
                now = time.perf_counter()
                started.append((offset, now)) if not started or started[-1][0] != offset else None
                changes = {"step": offset + step + 1, "distance": distance}
                if step:
                    changes["ms_per_step"] = (now - started[-1][1]) * 1000 / step
                if frame is not None:
                    changes.update(frame=frame, frame_step=offset + step + 1)
                self._update(photo, **changes)
            return on_step

        w_start = None
        if self.encoder is not None:                    # a first reconstruction in a fraction of a second
            from latent.runner import LatentRunner
            w_start = self.encoder.w(photo.aligned[None])[0]
            self._update(photo, frame=LatentRunner(G).synthesize(w_start[None])[0], frame_step=0)
        cfg = ProjectConfig(steps=photo.steps, w_prior=default_w_prior(photo.tune_steps))
        result = project(G, photo.aligned, cfg, on_step=progress(0), w_start=w_start)
        scores = {"w": psnr(result.image, photo.aligned)}
        tuned = None
        if photo.tune_steps:
            self._update(photo, state="tuning", frame=result.image, frame_step=photo.steps)
            apply_noise(G, result.noise)
            tuning = tune(G, result.w, photo.aligned, TuneConfig(steps=photo.tune_steps),
                          on_step=progress(photo.steps))
            tuned = [v.numpy() for v in tuning.G.synthesis.trainable_weights]
            result.image = tuning.image
            scores["tuned"] = psnr(tuning.image, photo.aligned)
        # noise and weights before w: a render that sees w (read without the lock) must also see them
        self._update(photo, noise=result.noise, tuned=tuned, psnr=scores, frame=result.image,
                     frame_step=photo.steps + photo.tune_steps, w=result.w.astype(np.float32), state="done")

    def close(self) -> None:
        """Stop the worker (a projection in progress stops at its next step)."""
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.queue.put(None)
