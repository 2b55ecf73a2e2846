"""Duplicate submission ids across result files: detect them, never pick one silently.

Two result files with the same submission id and benchmark version claim the same leaderboard row. A later date
does not make a file right (anyone can write a date), so the views show such a group as a conflict, rank none of
its files, and name every file so the operator can delete the wrong one. Files whose content is identical are
copies, not a conflict: one of them stands for the group.

    rows, conflicts = split_conflicts(loaded)   # loaded: iterable of (path, ResultFile)
    for conflict in conflicts:
        print(conflict.message())
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmark.results.schema import ResultFile


@dataclass(frozen=True)
class SubmissionConflict:
    """Result files that claim the same submission id and benchmark version with different content."""

    submission_id: str
    benchmark_version: str
    paths: tuple[Path, ...]
    dates: tuple[str, ...]

    @property
    def key(self) -> str:
        """The row key the files compete for: `submission id@benchmark version`."""
        return f"{self.submission_id}@{self.benchmark_version}"

    def message(self) -> str:
        """One line for the page or the terminal: which files conflict and what to do."""
        files = ", ".join(f"{path.name} (dated {date})" for path, date in zip(self.paths, self.dates, strict=True))
        return (
            f"Conflict: {len(self.paths)} result files claim submission {self.submission_id!r} (benchmark "
            f"{self.benchmark_version}) with different content: {files}. None of them is ranked; delete the wrong "
            "file(s) or give the rescored submission a new id."
        )


def result_key(result: ResultFile) -> str:
    """The key a leaderboard row is unique on: `submission id@benchmark version`."""
    return f"{result.submission.id}@{result.benchmark_version}"


def split_conflicts(
    results: Iterable[tuple[str | Path, ResultFile]],
) -> tuple[list[tuple[Path, ResultFile]], list[SubmissionConflict]]:
    """(results that may be ranked, one per key; the conflicts, oldest key first) from (path, result) pairs."""
    groups: dict[str, list[tuple[Path, ResultFile]]] = {}
    for path, result in results:
        groups.setdefault(result_key(result), []).append((Path(path), result))
    clean: list[tuple[Path, ResultFile]] = []
    conflicts: list[SubmissionConflict] = []
    for members in groups.values():
        distinct = {member[1].model_dump_json() for member in members}
        if len(distinct) == 1:
            clean.append(min(members, key=lambda member: str(member[0])))
            continue
        members = sorted(members, key=lambda member: (member[1].provenance.date, str(member[0])))
        first = members[0][1]
        conflicts.append(SubmissionConflict(
            submission_id=first.submission.id, benchmark_version=first.benchmark_version,
            paths=tuple(path for path, _ in members), dates=tuple(r.provenance.date for _, r in members),
        ))
    return clean, conflicts


def find_conflicts(results: Iterable[tuple[str | Path, ResultFile]]) -> list[SubmissionConflict]:
    """The conflicts among (path, result) pairs (see `split_conflicts`)."""
    return split_conflicts(results)[1]
