"""Which network a command uses, and the face model that ships with the repository. Imports no TensorFlow,
so commands resolve their network (and its edit directions) before starting it.

`--network` takes a local path, an http(s) URL or a published NVIDIA name (networks.pretrained), or
`utkface-64`, the generator this project trained on UTKFace (models/utkface-64/, see its MODEL_CARD.md).
Without `--network`: the newest snapshot under results/, else the shipped model; the command says which.
"""
from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from common.errors import UserError

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Shipped:
    """A network committed to the repository (G_ema, and D for fine-tuning where shipped), its card and its
    edit directions beside it."""
    name: str
    folder: Path                   # models/<name>/
    sha256: str                    # of the network file, recorded when it was committed
    what: str                      # one line for the user
    filename: str = "G_ema.keras"  # the network file in `folder` (G_ema, or G_ema and D)

    @property
    def file(self) -> Path:
        return self.folder / self.filename

    @property
    def directions(self) -> Path:
        return self.folder / "directions"

    @property
    def framing(self) -> Path:
        return self.folder / "framing.json"


SHIPPED: dict[str, Shipped] = {
    "utkface-64": Shipped(
        name="utkface-64",
        folder=REPO / "models" / "utkface-64",
        sha256="a329dd396e16d18f51051af4ef9f79fe7d9e1ec56f0ad1b13cec83bf0b68a549",
        what="faces 64x64 trained by this project on UTKFace (non-commercial research use only)",
        filename="G_ema-D.keras"),
}
DEFAULT = "utkface-64"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shipped_file(name: str = DEFAULT) -> Path:
    """The shipped model's file after checking it is there and intact (recorded sha256); UserError if not."""
    model = SHIPPED[name]
    path = model.file
    if not path.is_file():
        raise UserError(f"the shipped model {path} is missing (a partial clone? `git checkout -- {path.parent}`)")
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"version https://git-lfs"):
        raise UserError(f"{path} is a Git LFS pointer, not the model: run `git lfs pull`")
    digest = sha256_of(path)
    if model.sha256 and digest != model.sha256:
        raise UserError(f"{path} is damaged or was replaced: sha256 {digest[:16]}..., recorded "
                        f"{model.sha256[:16]}... (`git checkout -- {path}` restores it)")
    return path


def shipped_model(path: Path | str) -> Shipped | None:
    """The shipped model that `path` is (its file or folder), or None."""
    try:
        resolved = Path(path).resolve()
    except OSError:
        return None
    for model in SHIPPED.values():
        if resolved in (model.file.resolve(), model.folder.resolve()):
            return model
    return None


def snapshot_kimg(path: Path) -> float:
    """The kimg in a snapshot's name: `network-snapshot-000096.keras` -> 96.0, `...-000096.008.keras` -> 96.008,
    NVIDIA's `network-snapshot-000100.pkl` -> 100.0; -1 for any other name."""
    m = re.fullmatch(r"network-snapshot-(\d+(?:\.\d+)?)\.(?:keras|pkl)", path.name)
    return float(m.group(1)) if m else -1.0


def newest_snapshot(results: str | Path = "results") -> Path | None:
    """The most recently written network-snapshot-*.keras in any run folder under `results`, or None."""
    snaps = sorted(Path(results).glob("*/network-snapshot-*.keras"), key=lambda p: p.stat().st_mtime)
    return snaps[-1] if snaps else None


def find_network(arg: str | None, results: str | Path = "results",
                 log: Callable[[str], None] | None = None) -> Path:
    """The network a command should use (the one place that resolves --network): a local path; `utkface-64`
    (the shipped model); an http(s) URL or a published NVIDIA name, downloaded once into the cache; with no
    `arg`, the newest snapshot under `results`/, else the shipped model. `log` (default: stderr) is told which
    one was picked when `arg` was not given."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    if arg in SHIPPED:
        return shipped_file(arg)
    shipped = shipped_model(arg) if arg else None
    if shipped is not None:                        # its folder (models/utkface-64) or file: that model, checked
        return shipped_file(shipped.name)
    if arg:
        from networks import pretrained
        if pretrained.is_remote(arg):
            return pretrained.fetch(arg)
        return Path(arg)
    snap = newest_snapshot(results)
    if snap is not None:
        log(f"--network not given: using the newest snapshot under {results}/: {snap}")
        return snap
    path = shipped_file(DEFAULT)
    log(f"--network not given and no snapshot under {results}/: using the shipped model {DEFAULT} "
        f"({SHIPPED[DEFAULT].what}; {path.parent / 'MODEL_CARD.md'})")
    return path


def known_network(name: str) -> bool:
    """True when `name` can be a network: the shipped model, a published name or URL, or an existing path (the file
    system alone: commands ask before TensorFlow starts; find_network resolves names and URLs)."""
    from networks import pretrained
    return name in SHIPPED or pretrained.is_remote(name) or Path(name).exists()


def check_network_arg(arg: str | None) -> None:
    """UserError when `arg` names a local network file or folder that does not exist (None: find_network's
    default)."""
    if arg and not known_network(arg):
        raise UserError(f"network {arg} does not exist")


def framing_file(network: str | None, results: str | Path = "results") -> Path | None:
    """The framing recorded with a network (`framing.json` beside the shipped model, in a run folder or beside a
    network file), or None (then NVIDIA's FFHQ framing applies). Resolves without downloading."""
    if network is None:
        shipped = None if newest_snapshot(results) else SHIPPED[DEFAULT]
        return shipped.framing if shipped else None
    shipped = SHIPPED.get(network) or shipped_model(network)
    if shipped:
        return shipped.framing if shipped.framing.is_file() else None
    path = Path(network)
    for folder in (path, path.parent):
        if folder.is_dir() and (folder / "framing.json").is_file():
            return folder / "framing.json"
    return None


def encoder_file(network: str | None, results: str | Path = "results") -> Path | None:
    """The encoder trained for a network (`encoder.keras` beside the shipped model, in a run folder or beside a
    network file; latent/encoder.py), or None: projections then start at w_avg."""
    if network is None:
        shipped = None if newest_snapshot(results) else SHIPPED[DEFAULT]
        return shipped.folder / "encoder.keras" if shipped and (shipped.folder / "encoder.keras").is_file() else None
    shipped = SHIPPED.get(network) or shipped_model(network)
    if shipped:
        return shipped.folder / "encoder.keras" if (shipped.folder / "encoder.keras").is_file() else None
    path = Path(network)
    for folder in (path, path.parent):
        if folder.is_dir() and (folder / "encoder.keras").is_file():
            return folder / "encoder.keras"
    return None


def directions_folder(network: str | None, folder: str | None, results: str | Path = "results") -> Path:
    """Where edit directions are read: `folder` when given; the shipped model's own directions when the
    network is (or defaults to) the shipped model; else `directions/`. Resolves without downloading."""
    if folder:
        return Path(folder)
    if network is None:
        shipped = None if newest_snapshot(results) else SHIPPED[DEFAULT]
    else:
        shipped = SHIPPED.get(network) or shipped_model(network)
    return shipped.directions if shipped else Path("directions")
