"""The common interface of dataset readers and layout auto-detection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LocsegError
from ..io.atomic import validate_case_id
from ..registry import Registry


@dataclass(frozen=True)
class CaseRef:
    """One case of a raw dataset: its id, image file and (optional) label file."""

    case_id: str
    image: Path
    label: Path | None = None


@dataclass
class Dataset:
    """A raw dataset as read from disk, whatever its layout."""

    root: Path
    layout: str
    labels: dict[int, str]  # label value -> name, 0 = background
    cases: list[CaseRef]
    modality: str = "CT"
    name: str = ""
    skipped: dict[str, str] = field(default_factory=dict)  # case id -> why it was left out
    # evaluation regions the dataset defines: name -> label values merged (KiTS23: kidney_and_masses, ...)
    regions: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # classes to summarise together (mean of their per-class scores), e.g. the synthetic cohort's
    # location-ambiguous classes; dataset.json key "class_groups": {group: [label names]}
    class_groups: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def case(self, case_id: str) -> CaseRef:
        for c in self.cases:
            if c.case_id == case_id:
                return c
        raise LocsegError(f"no case {case_id!r} in this dataset", self.root)

    @property
    def labelled(self) -> list[CaseRef]:
        return [c for c in self.cases if c.label is not None]


Reader = Callable[[Path], Dataset]
Detector = Callable[[Path], bool]
# the built-in layouts register in `layouts.py` (named, not imported: it imports this module)
READERS: Registry[tuple[Detector, Reader]] = Registry("dataset layout", ("locseg_cli.datasets.layouts",))


def register_reader(layout: str, detect: Detector):
    """Decorator: register `reader(root) -> Dataset` for `layout`; `detect(root)` recognises it.

    Detection tries readers in registration order, so register specific layouts before generic ones.
    """

    def wrap(reader: Reader) -> Reader:
        READERS.add(layout, (detect, reader))
        return reader

    return wrap


def layouts() -> list[str]:
    return READERS.names()


def detect_layout(root: str | Path) -> str:
    root = Path(root)
    readers = READERS.entries()
    for name, (detect, _) in readers.items():
        if detect(root):
            return name
    raise LocsegError(f"no known dataset layout here (known: {', '.join(readers)})", root)


def layout_detects(root: str | Path, layout: str) -> bool:
    """Whether `layout`'s detector recognises `root` (an unknown layout recognises nothing)."""
    entry = READERS.get(layout)
    return entry is not None and Path(root).is_dir() and entry[0](Path(root))


def open_dataset(root: str | Path, layout: str | None = None) -> Dataset:
    """Read a raw dataset; `layout` None means auto-detect."""
    root = Path(root)
    if not root.is_dir():
        raise LocsegError("not a folder", root)
    layout = layout or detect_layout(root)
    entry = READERS.get(layout)
    if entry is None:
        raise LocsegError(f"unknown dataset layout {layout!r} (known: {', '.join(READERS.names())})")
    ds = entry[1](root)
    seen: set[str] = set()
    for c in ds.cases:
        validate_case_id(c.case_id, c.image)
        if c.case_id in seen:
            raise LocsegError(f"case id {c.case_id!r} occurs twice", root)
        seen.add(c.case_id)
    if not ds.cases:
        raise LocsegError(f"no cases found ({layout} layout)", root)
    return ds

