"""The model catalogue, the download cache, and catalogue names -> cached IR paths.

Contract:

- **Catalogue**: ``ovseg/catalog.json`` (a packaged copy of ``models/catalog.json``; a test keeps
  them identical), or the JSON file named by ``$OVSEG_CATALOG``. One :class:`ModelEntry` per
  Open Model Zoo instance-segmentation model: family, input size, resize rule, card AP, and per
  precision (``FP32``, ``FP16``, ``FP16-INT8``) its files with URL, size in bytes (``None`` where
  OMZ never published one) and hash (``sha256:HEX`` or ``sha384:HEX``).
- **Cache**: ``cache_dir()`` = ``$OVSEG_HOME``, else the per-user cache (``$XDG_CACHE_HOME/ovseg``
  or ``~/.cache/ovseg``; ``%LOCALAPPDATA%\\ovseg`` on Windows, ``~/Library/Caches/ovseg`` on
  macOS). A model's files live at ``CACHE/NAME/PRECISION/NAME.{bin,xml}``, the OMZ downloader's
  layout. A file under its final name is always complete and verified: it gets there only by a
  rename after its size and hash matched.
- **Download** (:func:`fetch`): urllib, one file at a time, the ``.bin`` before the ``.xml``.
  Bytes go to ``NAME.part``; a ``.part`` left by an interrupted run is resumed with an HTTP
  ``Range`` request (a server that answers 200 instead restarts it cleanly, and a resumed file
  that fails verification is downloaded once more from scratch). A size or hash mismatch deletes
  the file and raises :class:`DownloadError` with expected vs got. A cut connection keeps the
  ``.part`` (it never looks complete) and is retried ``retries`` times. ``mirror`` (or
  ``$OVSEG_MIRROR``) replaces the scheme and host of every URL and keeps its path.
- **Names** (:func:`resolve_model`): ``"instance-segmentation-security-0083"`` or
  ``"NAME:PRECISION"`` -> the cached ``.xml``; never downloads; when the model is not cached the
  :class:`ModelError` gives the exact ``ovseg fetch ...`` command.

No OpenVINO here: this module needs only the standard library and tqdm.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPException
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ConfigError, DownloadError, ModelError

__all__ = [
    "PRECISIONS",
    "DEFAULT_PRECISION",
    "ModelFile",
    "ModelEntry",
    "Catalog",
    "load_catalog",
    "cache_dir",
    "mirror_url",
    "model_dir",
    "cached_precisions",
    "fetch",
    "download_file",
    "fetch_command",
    "resolve_model",
    "identify",
]

logger = logging.getLogger(__name__)

#: Precisions OMZ publishes, in the order :func:`resolve_model` prefers a cached one.
PRECISIONS: tuple[str, ...] = ("FP16", "FP32", "FP16-INT8")
#: What ``ovseg fetch`` downloads unless told otherwise: half FP32's size, and the CPU plugin
#: computes in f32/bf16 either way.
DEFAULT_PRECISION = "FP16"
_HASHES = ("sha256", "sha384")
_CHUNK = 1 << 20
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ModelFile:
    """One file of one precision of a catalogue model.

    Attributes:
        name: path relative to the model's cache folder, e.g. ``FP16/NAME.xml``.
        url: where OMZ publishes it.
        size: bytes, ``None`` when the source never stated it (0033's 2019 files).
        hash: ``"sha256:HEX"`` or ``"sha384:HEX"``.
    """

    name: str
    url: str
    size: int | None
    hash: str

    @property
    def algorithm(self) -> str:
        return self.hash.partition(":")[0]

    @property
    def digest(self) -> str:
        return self.hash.partition(":")[2].lower()


@dataclass(frozen=True)
class ModelEntry:
    """A catalogue model (see ``models/catalog.json`` for the meaning of every field).

    Attributes:
        name: the OMZ name, e.g. ``instance-segmentation-security-0083``.
        family: interface family, ``"maskrcnn"`` (im_data/im_info) or ``"labels-boxes-masks"``
            (image -> labels/boxes/masks), as :func:`ovseg.model.check_interface` names it.
        input_hw: (height, width) of the network input.
        resize: the accuracy config's rule, ``"fit"`` (fit_to_window + padding) or ``"stretch"``.
        box_ap, mask_ap: the card's headline COCO val2017 AP in percent.
        files: per precision, its files in download order (weights first).
        readable: ``False`` when current OpenVINO cannot read the published files (0033).
        replaced_by: the model to use instead, when not readable.
    """

    name: str
    family: str
    input_hw: tuple[int, int]
    resize: str
    box_ap: float | None
    mask_ap: float | None
    files: Mapping[str, tuple[ModelFile, ...]]
    readable: bool = True
    replaced_by: str | None = None
    note: str = ""
    omz_release: str = ""
    description: str = ""
    num_classes: int = 80
    max_detections: int = 100
    card: Mapping[str, str] = field(default_factory=dict)

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(self.files)

    def size_bytes(self, precision: str) -> int | None:
        """Total size of one precision's files, ``None`` if any size is unknown."""
        sizes = [f.size for f in self.files.get(precision, ())]
        return None if not sizes or None in sizes else sum(s for s in sizes if s is not None)

    def xml_file(self, precision: str) -> ModelFile:
        return next(f for f in self.files[precision] if f.name.endswith(".xml"))


@dataclass(frozen=True)
class Catalog:
    """The catalogue: entries by name, in file order. ``source`` is the file it came from."""

    entries: Mapping[str, ModelEntry]
    source: str

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def get(self, name: str) -> ModelEntry:
        """The entry called ``name``; :class:`ModelError` with close names otherwise."""
        try:
            return self.entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.entries), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else " (ovseg models lists them)"
            raise ModelError(f"unknown model {name!r}: expected a name from the catalogue{hint}") from None


# -- catalogue ---------------------------------------------------------------------------


def _parse_file(raw: Mapping[str, Any], where: str) -> ModelFile:
    try:
        item = ModelFile(name=str(raw["name"]), url=str(raw["url"]), size=raw["size"], hash=str(raw["hash"]))
    except KeyError as error:
        raise ConfigError(f"{where}: expected file fields name, url, size, hash, got no {error}") from None
    if item.algorithm not in _HASHES or not item.digest:
        raise ConfigError(f"{where}: {item.name}: expected a hash 'sha256:HEX' or 'sha384:HEX', got {item.hash!r}")
    if item.size is not None and (not isinstance(item.size, int) or item.size < 0):
        raise ConfigError(f"{where}: {item.name}: expected a size in bytes or null, got {item.size!r}")
    if Path(item.name).is_absolute() or ".." in Path(item.name).parts:
        raise ConfigError(f"{where}: expected a relative file name, got {item.name!r}")
    return item


def _parse_entry(raw: Mapping[str, Any], where: str) -> ModelEntry:
    try:
        name = str(raw["name"])
        files = {
            str(precision): tuple(_parse_file(f, f"{where}: {name}") for f in items)
            for precision, items in raw["files"].items()
        }
        entry = ModelEntry(
            name=name,
            family=str(raw["family"]),
            input_hw=(int(raw["input_hw"][0]), int(raw["input_hw"][1])),
            resize=str(raw.get("resize", "fit")),
            box_ap=raw.get("box_ap"),
            mask_ap=raw.get("mask_ap"),
            files=files,
            readable=bool(raw.get("readable", True)),
            replaced_by=raw.get("replaced_by"),
            note=str(raw.get("note", "")),
            omz_release=str(raw.get("omz_release", "")),
            description=str(raw.get("description", "")),
            num_classes=int(raw.get("num_classes", 80)),
            max_detections=int(raw.get("max_detections", 100)),
            card=dict(raw.get("card", {})),
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise ConfigError(f"{where}: expected an entry with name, family, input_hw, files, got {error!r}") from None
    if entry.resize not in ("fit", "stretch"):
        raise ConfigError(f"{where}: {entry.name}: expected resize 'fit' or 'stretch', got {entry.resize!r}")
    for precision, items in entry.files.items():
        xmls = [f.name for f in items if f.name.endswith(".xml")]
        if len(xmls) != 1:
            raise ConfigError(f"{where}: {entry.name} {precision}: expected one .xml file, got {xmls}")
    return entry


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read a catalogue: ``path``, else ``$OVSEG_CATALOG``, else the one shipped with ovseg.

    Raises:
        ConfigError: the file is missing or not a catalogue.
    """
    path = path or os.environ.get("OVSEG_CATALOG") or None
    if path is None:
        source = "ovseg/catalog.json"
        text = resources.files("ovseg").joinpath("catalog.json").read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"cannot read the model catalogue {path}: {error.strerror or error}") from None
    try:
        doc = json.loads(text)
        items = doc["models"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{source}: expected a JSON object with a 'models' list, got something else") from None
    entries = {}
    for raw in items:
        entry = _parse_entry(raw, source)
        entries[entry.name] = entry
    return Catalog(entries=entries, source=source)


# -- cache -------------------------------------------------------------------------------


def cache_dir(override: str | Path | None = None) -> Path:
    """The model cache: ``override``, else ``$OVSEG_HOME``, else the per-user cache folder."""
    if override:
        return Path(override).expanduser()
    if os.environ.get("OVSEG_HOME"):
        return Path(os.environ["OVSEG_HOME"]).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "ovseg"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "ovseg"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ovseg"


def model_dir(name: str, cache: str | Path | None = None) -> Path:
    """``CACHE/NAME``: the folder holding one folder per precision."""
    return cache_dir(cache) / name


def _complete(path: Path, item: ModelFile) -> bool:
    """A file under its final name is complete (it got there by a verified rename); the size
    check also catches one truncated by hand."""
    return path.is_file() and (item.size is None or path.stat().st_size == item.size)


def cached_precisions(entry: ModelEntry, cache: str | Path | None = None) -> tuple[str, ...]:
    """The precisions of ``entry`` whose files are all in the cache."""
    root = model_dir(entry.name, cache)
    return tuple(p for p, items in entry.files.items() if all(_complete(root / f.name, f) for f in items))


# -- download ----------------------------------------------------------------------------


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


def _hash_file(path: Path, algorithm: str) -> Any:
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest


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
    got = _hash_file(part, item.algorithm).hexdigest()
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
) -> Path:
    """Download one precision of a catalogue model into the cache; return its ``.xml`` path.

    Files already complete in the cache are not downloaded again (unless ``force``).
    ``mirror`` defaults to ``$OVSEG_MIRROR``.

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
    with _exclusive(root):
        # Checked under the lock: another process may have just finished these files.
        todo = [f for f in entry.files[precision] if force or not _complete(root / f.name, f)]
        needed = sum(f.size or 0 for f in todo)
        free = shutil.disk_usage(root).free
        if needed > free:
            raise DownloadError(f"not enough disk space in {root}: expected {needed} bytes free, got {free}")
        for item in todo:
            download_file(item, root / item.name, mirror=mirror, retries=retries, progress=progress)
    return root / entry.xml_file(precision).name


@contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """Hold ``root/.lock`` so that two ovseg processes never write one ``.part`` at once.

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
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DownloadError(
                f"{root.name}: expected no other download into {root}, got one in progress (another ovseg fetch)"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- names -------------------------------------------------------------------------------


def fetch_command(name: str, precision: str, cache: str | Path | None = None) -> str:
    """The ``ovseg fetch`` command line that puts ``name`` where :func:`resolve_model` looks."""
    command = f"ovseg fetch {name} --precision {precision}"
    if cache is not None:
        command += f" --cache-dir {cache}"
    return command


def _split_name(text: str) -> tuple[str, str | None]:
    name, sep, precision = text.rpartition(":")
    return (name, precision) if sep and precision in PRECISIONS else (text, None)


def resolve_model(
    model: str | Path,
    *,
    precision: str | None = None,
    cache: str | Path | None = None,
    catalog: Catalog | None = None,
) -> Path:
    """A model argument -> the file to read. Never downloads.

    ``model`` is a path (returned unchanged when it is a file, has a model suffix or a folder
    in it), or a catalogue name, optionally with a precision: ``instance-segmentation-security-0083``
    or ``instance-segmentation-security-0083:FP16-INT8``. A bare name picks the first cached
    precision in :data:`PRECISIONS` order.

    Raises:
        ModelError: an unreadable catalogue model (0033, naming its replacement); a name not
            cached (giving the ``ovseg fetch`` command); an unknown name close to a catalogue
            name (suggesting it).
    """
    path = Path(model)
    text = str(model)
    if path.is_file() or path.suffix.lower() in (".xml", ".onnx", ".bin") or os.sep in text or "/" in text:
        return path
    name, named_precision = _split_name(text)
    precision = precision or named_precision
    catalog = catalog or load_catalog()
    if name not in catalog:
        close = difflib.get_close_matches(name, list(catalog.entries), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else " (ovseg models lists the names)"
        raise ModelError(f"model {text!r}: expected an existing .xml/.onnx file or a catalogue name, got neither{hint}")
    entry = catalog.get(name)
    if not entry.readable:
        raise ModelError(
            f"{name}: expected a model current OpenVINO can read, got one published only as a pre-v10 IR; "
            f"use {entry.replaced_by or 'a newer model'} (ovseg fetch {entry.replaced_by or 'NAME'})"
        )
    if precision is not None and precision not in entry.files:
        raise ModelError(f"{name}: expected a precision in {', '.join(entry.precisions)}, got {precision!r}")
    cached = cached_precisions(entry, cache)
    wanted = [precision] if precision else [p for p in PRECISIONS if p in entry.files]
    for p in wanted:
        if p in cached:
            return model_dir(name, cache) / entry.xml_file(p).name
    command = fetch_command(name, precision or DEFAULT_PRECISION, cache)
    where = cache_dir(cache)
    raise ModelError(f"{name}{':' + precision if precision else ''} is not in the model cache {where}: run `{command}`")


def identify(xml_path: str | Path, catalog: Catalog | None = None) -> tuple[ModelEntry, str] | None:
    """The catalogue entry and precision whose ``.xml`` has the same size and hash as
    ``xml_path`` (content, never the file name); ``None`` for any other model."""
    path = Path(xml_path)
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if catalog is None:
        try:
            catalog = load_catalog()
        except ConfigError as error:  # a broken $OVSEG_CATALOG must not stop a local model
            logger.warning("cannot check %s against the catalogue: %s", path, error)
            return None
    candidates = [
        (entry, precision, item)
        for entry in catalog
        for precision, items in entry.files.items()
        for item in items
        if item.name.endswith(".xml") and item.size == size
    ]
    digests: dict[str, str] = {}
    for entry, precision, item in candidates:
        if item.algorithm not in digests:
            digests[item.algorithm] = _hash_file(path, item.algorithm).hexdigest()
        if digests[item.algorithm] == item.digest:
            return entry, precision
    return None
