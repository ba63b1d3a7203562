"""The model catalogue: the Open Model Zoo instance-segmentation models ovseg knows.

``ovseg/catalog.json`` (a packaged copy of ``models/catalog.json``; a test keeps them
identical), or the JSON file named by ``$OVSEG_CATALOG``. One :class:`ModelEntry` per model:
family, input size, resize rule, card AP, and per precision (``FP32``, ``FP16``,
``FP16-INT8``) its files with URL, size in bytes (``None`` where OMZ never published one) and
hash (``sha256:HEX`` or ``sha384:HEX``). :func:`identify` recognises a catalogue model from the
content of its ``.xml``, whatever the file is called.

Standard library only.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelError
from .files import file_digest
from .suggest import close_matches

__all__ = ["PRECISIONS", "DEFAULT_PRECISION", "ModelFile", "ModelEntry", "Catalog", "load_catalog", "identify"]

logger = logging.getLogger(__name__)

#: Precisions OMZ publishes, in the order a bare catalogue name prefers a cached one.
PRECISIONS: tuple[str, ...] = ("FP16", "FP32", "FP16-INT8")
#: What ``ovseg fetch`` downloads unless told otherwise: half FP32's size, and the CPU plugin
#: computes in f32/bf16 either way.
DEFAULT_PRECISION = "FP16"
_HASHES = ("sha256", "sha384")


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
        note: what to know about the files (why they are unreadable, say).
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

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(self.files)

    def size_bytes(self, precision: str) -> int | None:
        """Total size of one precision's files, ``None`` if any size is unknown."""
        sizes = [f.size for f in self.files.get(precision, ())]
        return None if not sizes or None in sizes else sum(s for s in sizes if s is not None)

    def xml_file(self, precision: str) -> ModelFile:
        return next(f for f in self.files[precision] if f.name.endswith(".xml"))


    def default_precision(self) -> str:
        """:data:`DEFAULT_PRECISION` when the entry has it, else its first precision."""
        return DEFAULT_PRECISION if DEFAULT_PRECISION in self.files else self.precisions[0]

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
            close = close_matches(name, self.entries)
            hint = f" (did you mean {', '.join(close)}?)" if close else " (ovseg models lists them)"
            raise ModelError(f"unknown model {name!r}: expected a name from the catalogue{hint}") from None


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


def identify(xml_path: str | Path, catalog: Catalog | None = None) -> tuple[ModelEntry, str] | None:
    """The catalogue entry and precision whose ``.xml`` has the same size and hash as
    ``xml_path`` (content, never the file name); ``None`` for any other model. Only files of a
    catalogued size are hashed.

    Raises:
        ConfigError: the catalogue cannot be read.
    """
    path = Path(xml_path)
    try:
        size = path.stat().st_size
    except OSError:
        return None
    catalog = catalog or load_catalog()
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
            digests[item.algorithm] = file_digest(path, item.algorithm)
        if digests[item.algorithm] == item.digest:
            return entry, precision
    return None
