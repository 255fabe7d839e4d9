"""Files that are complete or absent: write under a temporary name beside the target, then rename."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from common.errors import UserError

_UMASK = os.umask(0o022)
os.umask(_UMASK)                                # read the process umask (os.umask can only set it)

# where converted networks, the FID Inception weights and real-image statistics are cached
CACHE = Path(os.environ.get("STYLEGAN2_TF_CACHE", Path.home() / ".cache" / "stylegan2-tf"))


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Yield an open temporary file beside `path`; on success it is synced and renamed over `path`."""
    with atomic_path(path) as tmp:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path (same folder and suffix as `path`) for a writer that wants a file name
    (np.save, Keras, OpenCV); it is renamed over `path` on success and removed on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)          # mkstemp makes 0600; the file gets the permissions open() gives
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and not exc.filename:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc       # say which file (full disk ...)
        raise


NAME_MAX = 255  # bytes in one path component on Linux file systems


def writable_folder(folder: Path) -> bool:
    """Whether entries can be created in `folder`: tried, since permission bits say yes to root on /proc and /sys."""
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=folder))
    except OSError:
        return False
    return True


def check_path_names(path: str | os.PathLike, what: str) -> None:
    """Every component of `path` fits the file system's name limit (UserError naming `what` otherwise)."""
    for part in Path(path).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise UserError(f"{what}: the name '{part[:40]}...' is {len(os.fsencode(part))} bytes long; "
                            f"file names have at most {NAME_MAX}")


def check_output_dir(path: str | os.PathLike, what: str) -> None:
    """Before any slow work: `path` must be a folder or creatable as one, and writable (UserError naming it)."""
    path = Path(path)
    check_path_names(path, what)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} exists and is not a folder")
    existing = next((p for p in [path, *path.absolute().parents] if p.exists()), None)
    if existing is None or not writable_folder(existing):
        raise UserError(f"{what} {path} cannot be written ({existing} is not a writable folder)")


def check_output_file(path: str | os.PathLike, what: str, suffix: str | None = None, overwrite: bool = False,
                      folder: bool = False) -> None:
    """Before any slow work: `path` (a file ending in `suffix`, or with `folder` a folder) can be written
    without replacing anything of the user's unless `overwrite`; its parent is a writable folder. UserError
    naming `what` and saying which rule it breaks."""
    path = Path(path)
    check_path_names(path, what)
    if folder:
        check_output_dir(path, what)
        if path.is_dir() and any(path.iterdir()) and not overwrite:
            raise UserError(f"{what} {path} is not empty; pass --overwrite to replace what is in it")
        return
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name" + (f" ending in {suffix}" if suffix else ""))
    if suffix and path.suffix.lower() != suffix:
        raise UserError(f"{what} {path}: the file name must end in {suffix}")
    if suffix == ".keras" and path.suffix != suffix:                  # Keras saves and loads only lower case
        raise UserError(f"{what} {path}: the file name must end in .keras, in lower case (Keras reads no other)")
    if path.exists() and not overwrite:
        raise UserError(f"{what} {path} exists; pass --overwrite to replace it")
    check_output_dir(path.absolute().parent, f"{what} {path}: the folder")


@contextlib.contextmanager
def undone_on_failure(paths: list[Path], folders: list[Path]) -> Iterator[None]:
    """On an exception, leave the output as it was: the files of `paths` that did not exist before are removed,
    and so are the folders among `folders`, their parents and the files' folders that did not exist before,
    once empty."""
    new = [Path(p) for p in paths if not Path(p).exists()]
    dirs = {d for f in [*map(Path, folders), *(p.parent for p in new)] for d in [f.absolute(), *f.absolute().parents]}
    created = sorted((d for d in dirs if not d.exists()), key=lambda d: -len(d.parts))     # deepest first
    try:
        yield
    except BaseException:
        for p in new:
            with contextlib.suppress(OSError):
                p.unlink()
        for d in created:
            with contextlib.suppress(OSError):
                d.rmdir()                                              # only when empty
        raise


def replace_folder(new: Path, dest: Path) -> None:
    """Give the complete folder `new` the name `dest`; an existing `dest` (--overwrite) goes only then."""
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
        new.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(dest)


def check_name(name: str, what: str) -> str:
    """A name from the user that becomes part of a file name (`create.py --name`, a direction's name) must be
    one plain file-name part: no folder separator, not `.`/`..`, no leading dot or dash, no control
    characters, at most 100 characters. Returns it; UserError naming `what` otherwise."""
    bad = (not name or len(name) > 100 or name.startswith((".", "-")) or any(c in name for c in "/\\:")
           or any(ord(c) < 32 or ord(c) == 127 for c in name))
    if bad:
        raise UserError(f"{what} {name!r} must be a plain file name (letters, digits, '_', '-', '.', no folder "
                        "separator, not starting with '.' or '-', at most 100 characters)")
    return name


def no_space_message(exc: BaseException) -> str | None:
    """A one-line message for a full disk, a quota or a read-only file system, else None."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or os.strerror(exc.errno)}{where}"
    return None


# A path the user gave that the file system refuses: a symlink loop, a name too long, a place that cannot be
# written (/proc, /sys, a file where a folder must be). These are bad input (exit 2), not our failure.
PATH_ERRNOS = (errno.ELOOP, errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR,
               errno.EINVAL, errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EXDEV, errno.EILSEQ)


def path_error_message(exc: BaseException) -> str | None:
    """A one-line message for a file-system refusal of a path the user gave, else None."""
    if isinstance(exc, RuntimeError) and str(exc).startswith("Symlink loop from "):    # pathlib.resolve()
        where = str(exc)[len("Symlink loop from "):].strip("'")
        return f"{where}: a symbolic link loop; give a path that ends somewhere"
    if isinstance(exc, UnicodeEncodeError) and "surrogates not allowed" in str(exc):
        return "a file name is not valid text in this system's encoding; rename it (only UTF-8 names are read)"
    if isinstance(exc, OSError) and exc.errno in PATH_ERRNOS:
        name = exc.filename if exc.filename is not None else ""
        where = f"{os.fsdecode(name)}: " if name else ""
        return f"{where}{exc.strerror or os.strerror(exc.errno)}"
    return None


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    """Append one JSON line (a single write of a whole line, so readers never see half a row)."""
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()
