"""The per-case loop every case-writing stage runs inside its `StageWriter`.

Cases whose fingerprint matches the previous (possibly interrupted) run are carried over; the others
are computed, one `add_case` each as they finish, so an interrupted stage resumes where it stopped.
A stage supplies only what differs: its cases with their input fingerprints, and the work on one case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..progress import Progress
from .manifest import StageWriter

T = TypeVar("T")


@dataclass
class CaseResult:
    """What one case left in the stage folder: its files (relative paths) and metadata."""

    files: dict[str, str]
    meta: dict[str, Any]
    progress_fields: dict[str, Any] = field(default_factory=dict)  # shown beside the progress bar


@dataclass
class PendingCase(Generic[T]):
    case_id: str
    item: T
    fingerprint: str


def pending_cases(writer: StageWriter, progress: Progress, label: str, cases: Iterable[tuple[str, T, Any]],
                  fingerprint: Callable[[Any], str] | None = None) -> list[PendingCase[T]]:
    """Start the progress bar and carry over the cases that need no redo; returns the others.

    `cases` yields (case id, item, input fingerprint): whatever, with the stage's config, decides
    whether a case's output is still current. `fingerprint` turns it into the case's fingerprint
    (default `writer.case_fingerprint`, which adds the stage's config).
    """
    cases = list(cases)
    fingerprint = fingerprint or writer.case_fingerprint
    progress.start(label, len(cases))
    todo = []
    for cid, item, inputs in cases:
        cfp = fingerprint(inputs)
        if writer.case_done(cid, cfp):
            progress.advance()
        else:
            todo.append(PendingCase(cid, item, cfp))
    return todo


def run_cases(writer: StageWriter, progress: Progress, todo: list[PendingCase[T]],
              work: Callable[[str, T], CaseResult], pool: Executor | None = None) -> None:
    """Compute each pending case with `work(case id, item)` and record it as soon as it is done.

    With a `pool`, cases run in its workers (`work` must then be a picklable top-level function) and
    are recorded in the order they finish.
    """
    if pool is None:
        for case in todo:
            _record(writer, progress, case, work(case.case_id, case.item))
    else:
        futures = {pool.submit(work, case.case_id, case.item): case for case in todo}
        for fut in as_completed(futures):
            _record(writer, progress, futures[fut], fut.result())
    progress.stop()


def _record(writer: StageWriter, progress: Progress, case: PendingCase, result: CaseResult) -> None:
    writer.add_case(case.case_id, result.files, result.meta, case.fingerprint)
    progress.advance(1, **result.progress_fields)
