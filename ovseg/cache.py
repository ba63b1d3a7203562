"""The model cache, and a model argument resolved once into what it names.

- **Cache**: ``cache_dir()`` = ``--cache-dir``, else ``$OVSEG_HOME``, else the per-user cache
  (``$XDG_CACHE_HOME/ovseg`` or ``~/.cache/ovseg``; ``%LOCALAPPDATA%\\ovseg`` on Windows,
  ``~/Library/Caches/ovseg`` on macOS). A model's files live at
  ``CACHE/NAME/PRECISION/NAME.{bin,xml}``, the OMZ downloader's layout. A file under its final
  name is always complete and verified (:mod:`ovseg.download` renames it there only then).
- **Names** (:func:`resolve_model`): a path, or ``"instance-segmentation-security-0083"`` or
  ``"NAME:PRECISION"``, becomes a :class:`ModelRef`: the file to read and, when it is a
  catalogue model, its entry and precision (a path is recognised by its content). Never
  downloads: a name not cached is a :class:`ModelError` giving the exact ``ovseg fetch``
  command.

Standard library only.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .catalog import PRECISIONS, Catalog, ModelEntry, ModelFile, identify, load_catalog
from .errors import ConfigError, ModelError
from .suggest import close_matches

__all__ = [
    "ModelRef",
    "cache_dir",
    "model_dir",
    "is_complete",
    "cached_precisions",
    "fetch_command",
    "resolve_model",
    "catalogue_name",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRef:
    """What a model argument names, resolved once.

    Attributes:
        path: the model file to read (``.xml`` with its ``.bin`` beside it, or ``.onnx``).
        entry: the catalogue entry, when the model is a catalogue model (named, or recognised
            from the content of its ``.xml``), else ``None``.
        precision: the entry's precision these files are (``FP16``, ...), else ``None``.
        by_name: whether it was given as a catalogue name (else as a path).
    """

    path: Path
    entry: ModelEntry | None = None
    precision: str | None = None
    by_name: bool = False

    @property
    def name(self) -> str:
        """The catalogue name, else the file's stem."""
        return self.entry.name if self.entry is not None else self.path.stem


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


def is_complete(path: Path, item: ModelFile) -> bool:
    """A file under its final name is complete (it got there by a verified rename); the size
    check also catches one truncated by hand."""
    return path.is_file() and (item.size is None or path.stat().st_size == item.size)


def cached_precisions(entry: ModelEntry, cache: str | Path | None = None) -> tuple[str, ...]:
    """The precisions of ``entry`` whose files are all in the cache."""
    root = model_dir(entry.name, cache)
    return tuple(p for p, items in entry.files.items() if all(is_complete(root / f.name, f) for f in items))


def fetch_command(name: str, precision: str, cache: str | Path | None = None) -> str:
    """The ``ovseg fetch`` command line that puts ``name`` (``precision`` one of its own) where
    :func:`resolve_model` looks."""
    command = f"ovseg fetch {name} --precision {precision}"
    if cache is not None:
        command += f" --cache-dir {cache}"
    return command


def _split_name(text: str) -> tuple[str, str | None]:
    name, sep, precision = text.rpartition(":")
    return (name, precision) if sep and precision in PRECISIONS else (text, None)


def _is_path(model: str | Path) -> bool:
    """A model argument taken as a path: a file, a model suffix or a folder in it."""
    path, text = Path(model), str(model)
    return path.is_file() or path.suffix.lower() in (".xml", ".onnx", ".bin") or os.sep in text or "/" in text


def catalogue_name(model: str | Path | ModelRef) -> tuple[str, str | None] | None:
    """``(name, precision or None)`` when ``model`` is given as a catalogue name (what
    :func:`resolve_model` looks up in the cache; the name is not checked), ``None`` for a path."""
    if isinstance(model, ModelRef) or _is_path(model):
        return None
    return _split_name(str(model))


def resolve_model(
    model: str | Path | ModelRef,
    *,
    precision: str | None = None,
    cache: str | Path | None = None,
    catalog: Catalog | None = None,
) -> ModelRef:
    """A model argument -> a :class:`ModelRef`. Never downloads.

    ``model`` is a path (taken as one when it is a file, has a model suffix or a folder in it),
    or a catalogue name, optionally with a precision: ``instance-segmentation-security-0083``
    or ``instance-segmentation-security-0083:FP16-INT8``. A bare name picks the first cached
    precision in :data:`~ovseg.catalog.PRECISIONS` order. An ``.xml`` path is looked up in the
    catalogue by its content (:func:`~ovseg.catalog.identify`), so that a catalogue model
    keeps its own resize rule whatever its file is called.

    Raises:
        ModelError: an unreadable catalogue model (0033, naming its replacement); a name not
            cached in ``cache`` (giving the ``ovseg fetch`` command for a precision the entry
            has); an unknown name (suggesting close ones).
    """
    if isinstance(model, ModelRef):
        return model
    path = Path(model)
    text = str(model)
    if _is_path(model):
        known = _identify_quietly(path, catalog) if path.suffix.lower() == ".xml" and path.is_file() else None
        if known is None:
            return ModelRef(path=path)
        return ModelRef(path=path, entry=known[0], precision=known[1])
    name, named_precision = _split_name(text)
    precision = precision or named_precision
    catalog = catalog or load_catalog()
    if name not in catalog:
        close = close_matches(name, catalog.entries)
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
            return ModelRef(path=model_dir(name, cache) / entry.xml_file(p).name, entry=entry, precision=p, by_name=True)
    command = fetch_command(name, precision or entry.default_precision(), cache)
    where = cache_dir(cache)
    raise ModelError(f"{name}{':' + precision if precision else ''} is not in the model cache {where}: run `{command}`")


def _identify_quietly(path: Path, catalog: Catalog | None) -> tuple[ModelEntry, str] | None:
    """:func:`identify`, except that a broken ``$OVSEG_CATALOG`` must not stop a local model."""
    try:
        return identify(path, catalog)
    except ConfigError as error:
        logger.warning("cannot check %s against the catalogue: %s", path, error)
        return None
