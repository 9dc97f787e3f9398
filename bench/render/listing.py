"""``distbench list``: what is registered, what is available here (or why not), what is stored."""

from __future__ import annotations

import textwrap
from itertools import groupby
from pathlib import Path

from distbench.render.summary import WIDTH

NAME = 18   # the name column, wide enough for parameter_server


def listing_lines(devices: str, workloads: list[tuple[str, str]], strategies: list[tuple[str, object, str]],
                  loops: list[tuple[str, str]], results: str, runs: list[Path], this_machine: str,
                  latest_states: dict[str, tuple[str, str]] | None = None,
                  unreadable: dict[str, list[str]] | None = None) -> list[str]:
    """The lines of ``list``, none wider than 120 columns: ``workloads`` and ``loops`` as
    (name, summary); ``strategies`` as (name, availability, summary), the availability on
    the name's line and the summary below it; the stored ``runs`` under ``results``, one
    line per machine folder."""
    lines = _wrapped("Devices (TensorFlow's physical devices; each cell probes its own before it runs): " + devices)
    lines.append("Workloads:")
    for name, summary in workloads:
        lines += _entry(name, summary)
    lines.append("Strategies:")
    for name, avail, summary in strategies:
        reason = avail.reason or ""
        reason = reason[len(name) + 2:] if reason.startswith(f"{name}: ") else reason   # not the name twice
        lines += _entry(name, ("available" if avail.ok else "unavailable") + (f": {reason}" if reason else ""))
        lines += _wrapped(summary, " " * (NAME + 3))
    lines.append("Loops:")
    for name, summary in loops:
        lines += _entry(name, summary)
    return lines + stored_lines(results, runs, this_machine, latest_states or {}, unreadable or {})


def stored_lines(results: str, runs: list[Path], this_machine: str, latest_states: dict[str, tuple[str, str]],
                 unreadable: dict[str, list[str]]) -> list[str]:
    """How many runs each machine folder holds and its latest (``compare`` and ``check``
    take a run's number, ``latest`` or ``latest~N`` on this machine), what that latest is
    when it is not a whole run (``latest_states``: unreadable, interrupted), and which of
    its earlier runs cannot be read (``unreadable``: file names)."""
    folders = {machine: list(files) for machine, files in groupby(runs, key=lambda p: p.parent.name)}
    if not folders:
        return [f"Stored runs in {results}/: none"]
    lines = [f"Stored runs in {results}/: {len(runs)}, in {len(folders)} machine folder"
             f"{'s' if len(folders) > 1 else ''}"]
    for machine, files in folders.items():
        here = "  (this machine)" if machine == this_machine else ""
        lines.append(f"  {machine}  {len(files)} run{'s' if len(files) > 1 else ''}, latest {files[-1].name}{here}")
        if machine in latest_states:
            lines += _wrapped(_latest_state(*latest_states[machine]), " " * 4)
        if machine in unreadable:
            names = unreadable[machine]
            lines += _wrapped(f"{len(names)} EARLIER RUN{'S' if len(names) > 1 else ''} CANNOT BE READ (compare and "
                              f"check skip {'them' if len(names) > 1 else 'it'} in the history and say why): "
                              f"{', '.join(names)}", " " * 4)
    if this_machine not in folders:
        lines.append(f"  none yet from this machine ({this_machine})")
    return lines


def _latest_state(kind: str, why: str) -> str:
    if kind == "unreadable":   # ``why``: the loader's refusal without the path ("is not valid JSON ...")
        return f"ITS LATEST CANNOT BE READ: it {why}"
    return "ITS LATEST WAS INTERRUPTED: it stopped before every cell of its plan had run"


def _entry(name: str, text: str) -> list[str]:
    first, *rest = textwrap.wrap(text, WIDTH - NAME - 3) or [""]
    return [f"  {name:{NAME}} {first}"] + [" " * (NAME + 3) + line for line in rest]


def _wrapped(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent or "  ")
