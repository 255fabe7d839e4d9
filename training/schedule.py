"""Progressive growing's schedule: the resolution a run trains at after n images and whether it is fading in."""
from __future__ import annotations

from networks.stylegan2 import lod_fading, lod_resolution
from training.config import TrainConfig, progressive_lod


class Schedule:
    """The ProGAN / StyleGAN v1 schedule of `cfg` (`progressive`, `lod_*`); one stage, (res, False), without it."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg

    def lod(self, nimg: int) -> float:
        """Level of detail after `nimg` images (0: full resolution, always so without growing)."""
        cfg = self.cfg
        if not cfg.progressive:
            return 0.0
        return progressive_lod(nimg / 1000, cfg.res, cfg.lod_initial_res, cfg.lod_training_kimg,
                               cfg.lod_transition_kimg)

    def stage(self, nimg: int) -> tuple[int, bool]:
        """(resolution trained, fading in) after `nimg` images; the resolution is also the dataset level read."""
        lod = self.lod(nimg)
        return lod_resolution(self.cfg.res, lod), lod_fading(lod)

    def changes(self, nimg: int, batch: int) -> bool:
        """Whether the stage at `nimg` differs from the one an iteration earlier (computed the same way on resume)."""
        return nimg > 0 and self.stage(nimg) != self.stage(nimg - batch)

    def message(self, nimg: int) -> str:
        res, fade = self.stage(nimg)
        what = f"fading {res}x{res} in over {res // 2}x{res // 2}" if fade else f"{res}x{res}"
        return (f"progressive: {what} from {nimg / 1000:.3f} kimg (lod {self.lod(nimg):.3f}); "
                f"G and D run the blocks up to {res}x{res}")
