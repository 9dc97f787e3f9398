"""Rows as a table (tabulate), Markdown, CSV or JSON: the one output format switch.

The renderers (``render/``) build every sentence a user reads, by command family: the
run's table (:mod:`.run`), time to target (:mod:`.targets`), overhead (:mod:`.overhead`),
verdicts (:mod:`.verdicts`), tune (:mod:`.tune`), the terminal summary (:mod:`.summary`)
and the report (:mod:`.report`), from values the logic computed; units come from
:mod:`distbench.render.units`.
"""

from __future__ import annotations

import csv
import io
import json

import tabulate as tabulate_module
from tabulate import tabulate

FORMATS = ("table", "markdown", "csv", "json")


def render_rows(headers: list[str], rows: list[list], fmt: str = "table", tight: bool = False) -> str:
    """``rows`` as a plain table, GitHub Markdown, CSV, or JSON (a list of objects).
    ``tight``: no padding beyond the two spaces between columns (the terminal summary)."""
    if fmt == "table":
        padding, tabulate_module.MIN_PADDING = tabulate_module.MIN_PADDING, 0 if tight else tabulate_module.MIN_PADDING
        try:
            return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
        finally:
            tabulate_module.MIN_PADDING = padding
    if fmt == "markdown":
        return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    if fmt == "json":
        return json.dumps([dict(zip(headers, r)) for r in rows], indent=2)
    raise ValueError(f"Unknown format {fmt!r}. Known: {', '.join(FORMATS)}.")


# -- the run table ------------------------------------------------------------------------
