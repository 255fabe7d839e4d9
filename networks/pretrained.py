"""NVIDIA's published StyleGAN2 networks: short names, URLs, and the download cache.

`--network` takes a local file, an http(s):// URL, or one of the short names below (`ffhq-1024`, ...).
Downloads go to `~/.cache/stylegan2-tf/networks/` (`STYLEGAN2_TF_NETWORKS` overrides the folder;
`STYLEGAN2_TF_CACHE` moves the whole cache), are reused on the next run, and are converted once to our
`.keras` format beside the pickle (networks.serialize.load_network).

Sources: the READMEs of NVlabs/stylegan2 (TF1, `networks/`), NVlabs/stylegan2-ada (TF1), NVlabs/stylegan2-ada-pytorch
(`pretrained/`, and train.py's transfer-learning sources) and NVlabs/stylegan3 (StyleGAN2 networks on NGC).
Sizes and sha256 checksums: none could be verified from here (no internet access when this table was written,
and the READMEs give none), so every entry has size=None, sha256=None and only the server's Content-Length is
checked. Fill them in once measured: `download` then checks both.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from common.download import download, is_url
from common.errors import UserError
from common.files import CACHE


@dataclass(frozen=True)
class Published:
    """One published network: where it is, what it is, and (when established) its size and sha256."""
    url: str
    what: str
    size: int | None = None
    sha256: str | None = None


_TF1 = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"
_ADA_TF = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada/pretrained/"
_ADA_PT = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_NGC = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"

PUBLISHED: dict[str, Published] = {
    # stylegan3 repo, "StyleGAN2 pre-trained models compatible with this codebase" (PyTorch pickles on NGC)
    "ffhq-1024": Published(_NGC + "stylegan2-ffhq-1024x1024.pkl", "FFHQ faces 1024x1024"),
    "ffhq-512": Published(_NGC + "stylegan2-ffhq-512x512.pkl", "FFHQ faces 512x512"),
    "ffhq-256": Published(_NGC + "stylegan2-ffhq-256x256.pkl", "FFHQ faces 256x256"),
    "ffhqu-1024": Published(_NGC + "stylegan2-ffhqu-1024x1024.pkl", "FFHQ-U (unaligned) faces 1024x1024"),
    "ffhqu-256": Published(_NGC + "stylegan2-ffhqu-256x256.pkl", "FFHQ-U (unaligned) faces 256x256"),
    "metfaces-1024": Published(_NGC + "stylegan2-metfaces-1024x1024.pkl", "MetFaces (art portraits) 1024x1024"),
    "metfacesu-1024": Published(_NGC + "stylegan2-metfacesu-1024x1024.pkl", "MetFaces-U 1024x1024"),
    "afhqv2-512": Published(_NGC + "stylegan2-afhqv2-512x512.pkl", "AFHQv2 animal faces 512x512"),
    "afhqcat-512": Published(_NGC + "stylegan2-afhqcat-512x512.pkl", "AFHQ cats 512x512"),
    "afhqdog-512": Published(_NGC + "stylegan2-afhqdog-512x512.pkl", "AFHQ dogs 512x512"),
    "afhqwild-512": Published(_NGC + "stylegan2-afhqwild-512x512.pkl", "AFHQ wild animals 512x512"),
    "brecahad-512": Published(_NGC + "stylegan2-brecahad-512x512.pkl", "BreCaHAD histopathology 512x512"),
    "cifar10-32": Published(_NGC + "stylegan2-cifar10-32x32.pkl", "CIFAR-10, class-conditional, 32x32"),
    "celebahq-256": Published(_NGC + "stylegan2-celebahq-256x256.pkl", "CelebA-HQ faces 256x256"),
    "lsundog-256": Published(_NGC + "stylegan2-lsundog-256x256.pkl", "LSUN dogs 256x256"),
    # NVlabs/stylegan2 (TF1 pickles, config F)
    "tf1-ffhq-1024": Published(_TF1 + "stylegan2-ffhq-config-f.pkl", "FFHQ 1024x1024, original TF1 release"),
    "tf1-car-512": Published(_TF1 + "stylegan2-car-config-f.pkl", "LSUN car 512x384 (in a 512x512 frame), TF1"),
    "tf1-cat-256": Published(_TF1 + "stylegan2-cat-config-f.pkl", "LSUN cat 256x256, TF1"),
    "tf1-church-256": Published(_TF1 + "stylegan2-church-config-f.pkl", "LSUN church 256x256, TF1"),
    "tf1-horse-256": Published(_TF1 + "stylegan2-horse-config-f.pkl", "LSUN horse 256x256, TF1"),
    # NVlabs/stylegan2-ada (TF1 pickles with ADA's names and fp16 / conv_clamp options)
    "ada-tf1-ffhq-1024": Published(_ADA_TF + "ffhq.pkl", "FFHQ 1024x1024, stylegan2-ada TF1"),
    "ada-tf1-metfaces-1024": Published(_ADA_TF + "metfaces.pkl", "MetFaces 1024x1024, stylegan2-ada TF1"),
    "ada-tf1-cifar10-32": Published(_ADA_TF + "cifar10.pkl", "CIFAR-10 conditional 32x32, stylegan2-ada TF1"),
    # NVlabs/stylegan2-ada-pytorch
    "ada-ffhq-1024": Published(_ADA_PT + "ffhq.pkl", "FFHQ 1024x1024 (original StyleGAN2), ada-pytorch"),
    "ada-metfaces-1024": Published(_ADA_PT + "metfaces.pkl", "MetFaces 1024x1024, ada-pytorch"),
    "ada-afhqcat-512": Published(_ADA_PT + "afhqcat.pkl", "AFHQ cats 512x512, ada-pytorch"),
    "ada-afhqdog-512": Published(_ADA_PT + "afhqdog.pkl", "AFHQ dogs 512x512, ada-pytorch"),
    "ada-afhqwild-512": Published(_ADA_PT + "afhqwild.pkl", "AFHQ wild 512x512, ada-pytorch"),
    "ada-brecahad-512": Published(_ADA_PT + "brecahad.pkl", "BreCaHAD 512x512, ada-pytorch"),
    "ada-cifar10-32": Published(_ADA_PT + "cifar10.pkl", "CIFAR-10 conditional 32x32, ada-pytorch"),
    "ada-ffhq-256-paper256": Published(_ADA_PT + "transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl",
                                       "FFHQ 256x256 (paper256 config), transfer-learning source"),
    "ada-celebahq-256": Published(
        _ADA_PT + "transfer-learning-source-nets/celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl",
        "CelebA-HQ 256x256, transfer-learning source"),
    "ada-lsundog-256": Published(_ADA_PT + "transfer-learning-source-nets/lsundog-res256-paper256-kimg100000-noaug.pkl",
                                 "LSUN dog 256x256, transfer-learning source"),
}


def networks_dir() -> Path:
    """Where downloaded networks are kept: $STYLEGAN2_TF_NETWORKS, else <cache>/networks."""
    env = os.environ.get("STYLEGAN2_TF_NETWORKS")
    return Path(env) if env else CACHE / "networks"


def is_remote(arg: str) -> bool:
    """True for an http(s) URL or a short name from PUBLISHED (a local file of that name wins)."""
    return is_url(arg) or (arg in PUBLISHED and not Path(arg).exists())


def cached_file(url: str) -> Path:
    """The cache file for `url`: its file name plus a short hash of the URL (two `ffhq.pkl` never collide)."""
    name = Path(urlparse(url).path).name or "network.pkl"
    stem, suffix = (name.rsplit(".", 1) + [""])[:2]
    suffix = f".{suffix}" if suffix in ("pkl", "keras") else ".pkl"
    return networks_dir() / f"{stem}-{hashlib.sha256(url.encode()).hexdigest()[:8]}{suffix}"


def fetch(arg: str, progress: bool = True) -> Path:
    """The local file for a URL or short name: the cached copy, or a fresh download (see module docstring)."""
    entry = PUBLISHED.get(arg) if not is_url(arg) else next((p for p in PUBLISHED.values() if p.url == arg), None)
    url = arg if is_url(arg) else entry.url if entry else None
    if url is None:
        raise UserError(f"unknown network name {arg!r}; known: {', '.join(PUBLISHED)}")
    dest = cached_file(url)
    if dest.exists():
        return dest
    hint = f"to use a copy you have, pass its path: --network /path/to/{Path(urlparse(url).path).name}"
    return download(url, dest, size=entry.size if entry else None, sha256=entry.sha256 if entry else None,
                    hint=hint, progress=progress)
