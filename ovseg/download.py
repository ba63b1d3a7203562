"""Model downloads: resumable, verified, one process at a time per model.

:func:`fetch` downloads one precision of a catalogue model into the cache
(:mod:`ovseg.cache`), one file at a time, the ``.bin`` before the ``.xml``, with urllib. Bytes
go to ``NAME.part``; a ``.part`` left by an interrupted run is resumed with an HTTP ``Range``
request (a server that answers 200 instead restarts it cleanly, and a resumed file that fails
verification is downloaded once more from scratch). A size or hash mismatch deletes the file
and raises :class:`DownloadError` with expected vs got. A cut connection keeps the ``.part``
(it never looks complete) and is retried ``retries`` times. ``mirror`` (or ``$OVSEG_MIRROR``)
replaces the scheme and host of every URL and keeps its path. A ``flock`` on the model's folder
keeps two processes from writing one file.

Standard library and tqdm only.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.client import HTTPException
from pathlib import Path
from typing import BinaryIO

from .cache import is_complete, model_dir
from .catalog import DEFAULT_PRECISION, Catalog, ModelFile, load_catalog
from .errors import ConfigError, DownloadError, ModelError
from .files import file_digest

__all__ = ["mirror_url", "download_file", "fetch"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_TIMEOUT_S = 30.0


def mirror_url(url: str, mirror: str | None) -> str:
    """``url`` with its scheme and host replaced by ``mirror``'s; the path is kept.

    A path in ``mirror`` is put in front of the original path, so that
    ``http://proxy:8080/omz`` turns ``https://storage.openvinotoolkit.org/repositories/...`` into
    ``http://proxy:8080/omz/repositories/...``.
    """
    if not mirror:
        return url
    base = urllib.parse.urlsplit(mirror)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise ConfigError(f"expected a mirror like https://host[:port][/path], got {mirror!r}")
    original = urllib.parse.urlsplit(url)
    path = base.path.rstrip("/") + original.path
    return urllib.parse.urlunsplit((base.scheme, base.netloc, path, original.query, ""))


class _Progress:
    """A tqdm bar when asked for one (the command line), nothing otherwise."""

    def __init__(self, enabled: bool, desc: str, total: int | None, initial: int) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, dynamic_ncols=True, leave=True,
            )

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _CutError(Exception):
    """The transfer stopped early; the ``.part`` file is kept for a resume."""


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total size)`` of a ``Content-Range: bytes 100-999/1000`` header."""
    if not value or not value.startswith("bytes ") or "/" not in value:
        return None, None
    span, _, total = value[6:].partition("/")
    first = span.partition("-")[0].strip()
    return (int(first) if first.isdigit() else None), (int(total) if total.strip().isdigit() else None)


def _transfer(url: str, part: Path, item: ModelFile, *, progress: bool, desc: str) -> bool:
    """Append the missing bytes of ``item`` to ``part``; returns whether bytes from before
    this call's request were kept (a resume).

    Raises:
        _CutError: the connection ended before the file did (``part`` kept).
        DownloadError: HTTP error, unreachable host, or a size that cannot match (``part`` deleted).
    """
    have = part.stat().st_size if part.is_file() else 0
    if item.size is not None and have >= item.size:
        return have > 0  # nothing left to fetch: verify what is there
    headers = {"User-Agent": "ovseg"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # range past the end: the .part is bad, start over
            part.unlink()
            return _transfer(url, part, item, progress=progress, desc=desc)
        raise DownloadError(f"GET {url}: expected HTTP 200, got {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"GET {url}: expected a reachable server, got {reason} (try --mirror)") from None
    with response:
        first, total = _content_range(response.headers.get("Content-Range"))
        if response.status == 206 and first != have:
            # A range other than the one asked for: drop what we have and ask for the whole file.
            part.unlink(missing_ok=True)
            if not have:
                raise DownloadError(f"GET {url}: expected HTTP 200, got 206 for bytes from {first}")
            response.close()
            return _transfer(url, part, item, progress=progress, desc=desc)
        if have and response.status == 206:
            mode = "ab"
        else:
            if have:
                logger.info("%s: the server did not resume at byte %d; starting over", url, have)
            have = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        if item.size is not None and total is not None and total != item.size:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{item.name} from {url}: size mismatch: expected {item.size} bytes, got {total}")
        expected = total if total is not None else item.size
        bar = _Progress(progress, desc, expected, have)
        try:
            with part.open(mode) as out:
                limit = item.size + 1 if item.size is not None else None
                received = have + _copy(response, out, bar, limit)
        except OSError as error:
            raise DownloadError(f"cannot write {part}: {error.strerror or error}") from None
        finally:
            bar.close()
    if expected is not None and received < expected:
        raise _CutError(f"{item.name}: connection closed: expected {expected} bytes, got {received}")
    return mode == "ab"


def _copy(response: BinaryIO, out: BinaryIO, bar: _Progress, limit: int | None) -> int:
    """Copy the body in 1 MiB chunks; stop once at ``limit`` (the size check then fails).

    Raises:
        _CutError: reading failed midway (connection reset, timeout, incomplete chunk).
    """
    copied = 0
    while limit is None or copied < limit:
        try:
            chunk = response.read(_CHUNK)
        except (OSError, HTTPException) as error:
            out.flush()
            raise _CutError(f"connection lost after {copied} bytes of this request: {error!r}") from None
        if not chunk:
            break
        out.write(chunk)
        copied += len(chunk)
        bar.update(len(chunk))
    return copied


def _verify(part: Path, item: ModelFile) -> str | None:
    """``None`` when ``part`` has the catalogue's size and hash, else the one-line reason."""
    size = part.stat().st_size
    if item.size is not None and size != item.size:
        return f"size mismatch: expected {item.size} bytes, got {size}"
    got = file_digest(part, item.algorithm)
    if got != item.digest:
        return f"{item.algorithm} mismatch: expected {item.digest}, got {got}"
    return None


def download_file(
    item: ModelFile,
    dest: Path,
    *,
    mirror: str | None = None,
    retries: int = 2,
    progress: bool = False,
) -> Path:
    """Download one catalogue file to ``dest``, verified; see the module docstring.

    Args:
        item: the file (URL, size, hash).
        dest: its final path; written only by renaming a verified ``dest.part``.
        mirror: replaces the URL's scheme and host (:func:`mirror_url`).
        retries: how many times a cut connection is resumed before giving up.
        progress: show a tqdm bar on stderr.

    Raises:
        DownloadError: HTTP error, unreachable host, size or hash mismatch (the partial file is
            deleted), or a connection cut ``retries + 1`` times (the ``.part`` is kept, and the
            next call resumes it).
    """
    url = mirror_url(item.url, mirror)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    cuts, resumed, restarted = 0, False, False
    while True:
        try:
            resumed |= _transfer(url, part, item, progress=progress, desc=Path(item.name).name)
        except _CutError as cut:
            cuts += 1
            if cuts > retries:
                raise DownloadError(f"{cut}; kept {part.name}: run the same command again to resume") from None
            logger.warning("%s; resuming (%d of %d)", cut, cuts, retries)
            continue
        problem = _verify(part, item)
        if problem is None:
            os.replace(part, dest)
            logger.info("%s: verified (%s)", dest, item.algorithm)
            return dest
        part.unlink(missing_ok=True)
        if resumed and not restarted:
            # The bytes kept from before may be what is wrong: one clean download.
            logger.warning("%s: %s after resuming; downloading it again from the start", item.name, problem)
            resumed, restarted = False, True
            continue
        raise DownloadError(f"{item.name} from {url}: {problem}; the file was deleted")


def fetch(
    name: str,
    precision: str = DEFAULT_PRECISION,
    *,
    cache: str | Path | None = None,
    mirror: str | None = None,
    catalog: Catalog | None = None,
    force: bool = False,
    retries: int = 2,
    progress: bool = False,
    wait_s: float = 0.0,
) -> Path:
    """Download one precision of a catalogue model into the cache; return its ``.xml`` path.

    Files already complete in the cache are not downloaded again (unless ``force``).
    ``mirror`` defaults to ``$OVSEG_MIRROR``. ``wait_s``: how long to wait for another process
    fetching the same model into the same cache (its lock); 0: fail at once.

    Raises:
        ModelError: unknown name or precision.
        DownloadError: see :func:`download_file`; also too little free disk space.
    """
    catalog = catalog or load_catalog()
    entry = catalog.get(name)
    if precision not in entry.files:
        raise ModelError(f"{name}: expected a precision in {', '.join(entry.precisions)}, got {precision!r}")
    if not entry.readable:
        logger.warning("%s: %s", name, entry.note or "current OpenVINO cannot read these files")
    mirror = mirror if mirror is not None else (os.environ.get("OVSEG_MIRROR") or None)
    root = model_dir(name, cache)
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive(root, wait_s):
        # Checked under the lock: another process may have just finished these files.
        todo = [f for f in entry.files[precision] if force or not is_complete(root / f.name, f)]
        needed = sum(f.size or 0 for f in todo)
        free = shutil.disk_usage(root).free
        if needed > free:
            raise DownloadError(f"not enough disk space in {root}: expected {needed} bytes free, got {free}")
        for item in todo:
            download_file(item, root / item.name, mirror=mirror, retries=retries, progress=progress)
    return root / entry.xml_file(precision).name


@contextmanager
def _exclusive(root: Path, wait_s: float = 0.0) -> Iterator[None]:
    """Hold ``root/.lock`` so that two ovseg processes never write one ``.part`` at once
    (waiting up to ``wait_s`` seconds for another holder).

    An advisory ``flock``: the kernel releases it when the process dies, so a crash leaves no
    stale lock. Where ``fcntl`` does not exist (Windows) there is no lock; a mixed-up file would
    still fail its hash and be deleted.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows)
        yield
        return
    with (root / ".lock").open("a") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                raise DownloadError(
                    f"{root.name}: expected no other download into {root}, got one in progress (another ovseg fetch)"
                ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


