"""Files written whole or not at all, early checks of output paths, and file digests.

Every file ovseg writes (overlays, JSON, results, videos, downloads) appears under its final
name complete: it is written under a temporary name beside it and renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import OvsegError

__all__ = ["atomic_write", "temporary_path", "publish", "check_writable", "check_folder", "file_digest"]

_CHUNK = 1 << 20


def temporary_path(path: Path) -> Path:
    """A new, empty, hidden file beside ``path`` (same folder, same suffix), to be renamed
    into place by :func:`publish`. The folder is created if needed.

    Raises:
        OvsegError: the folder cannot be created or written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    except OSError as error:
        raise OvsegError(f"cannot write {path}: {error.strerror or error}") from None
    os.close(fd)
    return Path(name)


def publish(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path`` with the usual permissions (0666 less the umask, not the
    temporary file's 0600)."""
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as error:
        raise OvsegError(f"cannot write {path}: {error.strerror or error}") from None


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place, so
    that ``path`` is either absent or complete. File-system errors become one-line
    :class:`OvsegError`s naming the path; the temporary file never stays behind."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        try:
            write(tmp)
        except OSError as error:
            raise OvsegError(f"cannot write {path}: {error.strerror or error}") from None
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: str | Path | None) -> None:
    """Fail early, before a long run, when the file ``path`` cannot be written (a folder, a
    parent that is a file or cannot be created, a folder without write permission)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise OvsegError(f"cannot write {path}: expected a file name, got a folder")
    try:
        check_folder(path.parent)
    except OvsegError as error:
        raise OvsegError(f"cannot write {path}: {str(error).partition(': ')[2]}") from None


def check_folder(folder: str | Path) -> None:
    """Fail early when files cannot be written into ``folder`` (created if absent)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OvsegError(f"cannot write into {folder}: {error.strerror or error}") from None
    if not os.access(folder, os.W_OK):
        raise OvsegError(f"cannot write into {folder}: expected a writable folder, got one without write permission")


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's content (``sha256``, ``sha384``, any :mod:`hashlib` name)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
