"""Input images from a folder (recursive), a .zip or a .tar(.gz/.bz2/.xz) archive, read lazily by name."""
from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from pathlib import Path

from common.errors import UserError
from common.images import MAX_IMAGE_BYTES

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class FileTooLarge(ValueError):
    """A file (or archive member, by its unpacked size) above MAX_IMAGE_BYTES: skipped, never read."""


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in rel.split("/"))


class Source:
    """A set of named files. Picklable: archives are opened on first use in each process."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"source {self.path} does not exist")
        name = self.path.name.lower()
        if self.path.is_dir():
            self.kind = "folder"
        elif name.endswith(".zip"):
            self.kind = "zip"
        elif name.endswith(_TAR_SUFFIXES):
            self.kind = "tar"
        else:
            raise UserError(f"source {self.path} is neither a folder nor a .zip/.tar archive")
        self._handle = None
        self._tar_members: dict[str, tarfile.TarInfo] | None = None

    def __getstate__(self) -> dict:
        return {"path": self.path, "kind": self.kind}

    def __setstate__(self, state: dict) -> None:
        self.path, self.kind = state["path"], state["kind"]
        self._handle, self._tar_members = None, None

    def list_files(self) -> list[str]:
        """All regular, non-hidden files as sorted relative paths with '/' separators."""
        try:
            if self.kind == "folder":
                names = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]
            elif self.kind == "zip":
                names = [i.filename for i in self._open().infolist() if not i.is_dir()]
            else:
                self._open()
                names = list(self._tar_members)
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, zlib.error) as exc:   # damaged or cut short
            raise UserError(f"cannot read {self.path}: {exc}") from None
        return sorted(n for n in names if not _hidden(n))

    def size(self, name: str) -> int:
        """Bytes of `name` once read: its size on disk, or an archive member's unpacked size from the archive's
        directory. Python's zip reader never returns more than that recorded size (a member whose data
        unpacks to more fails its CRC check), so a size check here bounds the memory of `read`."""
        if self.kind == "folder":
            return (self.path / name).stat().st_size
        if self.kind == "zip":
            return self._open().getinfo(name).file_size
        self._open()
        return self._tar_members[name].size

    def read(self, name: str) -> bytes:
        """The bytes of `name`; FileTooLarge (without reading it) above MAX_IMAGE_BYTES."""
        size = self.size(name)
        if size > MAX_IMAGE_BYTES:
            raise FileTooLarge(f"{size:,} bytes, above the {MAX_IMAGE_BYTES >> 20} MiB limit for one image")
        if self.kind == "folder":
            return (self.path / name).read_bytes()
        if self.kind == "zip":
            return self._open().read(name)
        member = self._open().extractfile(self._tar_members[name])
        return member.read()

    def _open(self):
        if self._handle is None:
            if self.kind == "zip":
                self._handle = zipfile.ZipFile(self.path)
            elif self.kind == "tar":
                self._handle = tarfile.open(self.path)
                self._tar_members = {m.name: m for m in self._handle.getmembers() if m.isfile()}
        return self._handle


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def aligned_images(path):
    """The images of `path` for `alignment.faces.measure_framing`: a dataset of ours (its top level), or a folder
    or archive of aligned face photos; uint8 [H, W, C] arrays, lazily."""
    from pathlib import Path
    path = Path(path)
    if (path / "dataset.json").is_file():
        from datasets.reader import read_records
        return (img for img, _ in read_records(path))
    from common.images import BadImage, open_image, to_array
    source = Source(path)

    def decoded():
        for name in source.list_files():
            if is_image_name(name):
                try:
                    yield to_array(open_image(source.read(name)), 3)
                except (BadImage, OSError, ValueError):
                    continue
    return decoded()
