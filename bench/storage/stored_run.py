"""One stored run, read: its cells' records, its plan, its machine and what made it
(:mod:`distbench.storage.files` finds, checks and loads the files)."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from distbench.core.lockstep import not_judged
from distbench.storage.machine import machine_id
from distbench.storage.results import corrupt, results_of

SCHEMA_VERSION = 1
DISTBENCH_ID = re.compile(r"[^-]+-\d+cpu-(?:nogpu|\d+gpu)-[0-9a-f]{6}")   # a machine folder distbench named

if TYPE_CHECKING:
    from distbench.storage.results import CellResult


@dataclass(frozen=True)
class StoredRun:
    """One stored run file, loaded and checked."""

    path: Path
    number: int
    machine_id: str
    data: dict

    @property
    def label(self) -> str:
        return f"{self.machine_id}/{self.path.name}"

    @cached_property
    def measurements(self) -> str:
        """What makes the run one measurement: its time and its cells' records (a copy of
        the file under another name has the same)."""
        return json.dumps([self.data.get("datetime"), self.data.get("benchmarks"),
                           self.data["distbench"].get("unmeasured")], sort_keys=True, default=str)

    @cached_property
    def measured_on(self) -> str | None:
        """The machine id this run's stored fingerprint gives, when its folder is named by
        another of distbench's ids (another machine's run copied in); None when they agree,
        or the folder is named otherwise (by hand)."""
        info = self.machine_info
        if not DISTBENCH_ID.fullmatch(self.machine_id) or not info.get("distbench"):
            return None
        found = machine_id(info["distbench"], arch=info.get("machine"))
        return found if found != self.machine_id else None

    def damage(self) -> str | None:
        """What of the run its readers could not read, read once here (cached) so that it
        is one line, not a traceback later: the time, a record of every cell listed, a
        measured cell's settings, step times and guard metric (a history's noise and check
        read them), and what no process records (hand-edited: a NaN step time's median
        over the rest read as whole). None when it is whole."""
        try:
            self.commit, self.build, self.stored_at
            empty = [cell for cell, result in self.results.items() if not result.repeats]
            wrong = [(cell, why) for cell, result in self.results.items()
                     if result.measured and (result.spec, result.estimate, result.process_medians,
                                             result.guard_metric, result.guard_direction)
                     for why in [corrupt(result)] if why]
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
            return (f"does not read as a run of schema version {SCHEMA_VERSION} "
                    f"({type(exc).__name__}: {str(exc)[:80]})")
        if empty:
            return f"has no record of cell {empty[0]}, which it lists"
        return f"has {wrong[0][1]} in cell {wrong[0][0]}, which no process records" if wrong else None

    @cached_property
    def stored_at(self) -> dt.datetime:
        """When the run was stored (UTC; the epoch for a file that records no time). A time
        that is not ISO 8601 raises, as :func:`~distbench.storage.files.load` reads it."""
        when = dt.datetime.fromisoformat(self.data.get("datetime", "1970-01-01T00:00:00+00:00"))
        return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)

    @property
    def machine_info(self) -> dict:
        return self.data.get("machine_info", {})

    @property
    def overhead(self) -> list[dict]:
        """The harness-overhead records of the run (none when it did not run)."""
        return self.data["distbench"].get("overhead", [])

    @property
    def peak(self) -> dict | None:
        """The devices' peak measured with the run (distbench.scenarios.peak), when it was."""
        return self.data["distbench"].get("peak")

    @property
    def interrupted(self) -> bool:
        """Whether the run was stopped (Ctrl-C) before every planned cell ran."""
        return bool(self.data["distbench"].get("interrupted"))

    @property
    def planned_repeats(self) -> dict[str, int]:
        """Cell id -> the processes the run planned for it ({} for runs stored before the
        plan was: an interrupted one cannot say which cells are short)."""
        return self.data["distbench"].get("plan", {}).get("repeats", {})

    @property
    def guard_seeds(self) -> int | None:
        """The accuracy guard's seeds the run was planned with (under 2: the guard was off);
        None for runs stored before the plan was."""
        return self.data["distbench"].get("plan", {}).get("guard_seeds")

    @property
    def interleaved(self) -> dict:
        """An A/B run's pairs and verdicts ({} for ordinary runs)."""
        return self.data["distbench"].get("interleaved", {})

    @property
    def commit(self) -> str:
        return (self.data.get("commit_info", {}).get("id") or "?")[:8]

    @property
    def build(self) -> str:
        """The distbench that made the run: ``0.1.0 (code 1a2b3c4d5e6f)``, its commit where no
        code hash was recorded (older runs), ``?`` when neither was."""
        own = self.data.get("commit_info", {}).get("distbench") or {}
        mark = f"code {own['code']}" if own.get("code") else f"commit {own['commit'][:8]}" if own.get("commit") else ""
        return f"{own.get('version', '?')} ({mark})" if mark else own.get("version", "not recorded")

    @cached_property
    def results(self) -> dict[str, "CellResult"]:
        """Cell id -> its :class:`~distbench.storage.results.CellResult`, in run order (built once)."""
        return results_of(self.cells(), self.planned_repeats)

    def cells(self) -> dict[str, list[dict]]:
        """Cell id -> the records of its repeats (ok, skipped or error), in run order."""
        measured = {b["param"]: b["extra_info"]["distbench"]["repeats"] for b in self.data["benchmarks"]}
        unmeasured = self.data["distbench"].get("unmeasured", {})
        order = self.data["distbench"].get("cells") or list(measured)
        found = {c: measured[c] if c in measured else unmeasured[c] for c in order if c in measured or c in unmeasured}
        return {c: self._lockstep_unjudged(c, repeats) for c, repeats in found.items()}

    def _lockstep_unjudged(self, cell: str, repeats: list[dict]) -> list[dict]:
        """A lockstep cell's records with their disturbance not judged, as workers record it
        since (:func:`distbench.core.lockstep.not_judged`): runs stored before then read every
        process DISTURBED by its own partner."""
        paired = self.interleaved.get("cells", {}).get(cell.rsplit("@", 1)[0], {})
        if not paired.get("lockstep"):
            return repeats
        return [{**r, "disturbance": not_judged(r["disturbance"])} if r.get("disturbance") else r for r in repeats]
