"""A stored interleaved run (``ab``, ``check --against``, a ``bisect`` step) in the report:
each cell's speed and both sides' test metric, and how the run was judged."""

from __future__ import annotations

from distbench.render import units
from distbench.render.verdicts import ACCURACY_WORDS


STORED_PAIRED_HEADERS = ["cell", "pairs", "B/A [95% CI]", "p", "test A", "test B", "verdict"]


def stored_paired(stored: dict) -> tuple[list[list], list[int]]:
    """A stored interleaved run's rows (speed and each side's test metric, the verdict with
    ``LESS ACCURATE`` where B lost more than the tolerance), and the indices of the rows
    that are regressions."""
    rows, bad = [], []
    for k, c in enumerate(stored.get("cells", {}).values()):
        # As the terminal's rows say it (runs stored before "accuracy" have less_accurate alone).
        verdict = c["verdict"] + (", LESS ACCURATE" if c.get("less_accurate") else
                                   ACCURACY_WORDS.get(c.get("accuracy"), "").upper())
        interval = tuple(c["interval"]) if c.get("interval") else None
        rows.append([c["cell"], c["pairs"], units.ratio(c.get("ratio"), interval), units.p_value(c.get("p_value")),
                     _side(c, "metric_a"), _side(c, "metric_b"), verdict])
        if c["verdict"] == "slower" or c.get("less_accurate"):
            bad.append(k)
    return rows, bad


def _side(cell: dict, key: str) -> str:
    """A side's stored test metric, named (``auc 0.969``)."""
    return f"{cell['metric']} {units.metric(cell.get(key))}" if cell.get("metric") else "-"


def stored_paired_note(stored: dict) -> str:
    """How a stored interleaved run was judged."""
    tolerance = stored.get("accuracy_tolerance")
    accuracy = (f"; a test metric lost beyond {tolerance:g} (of A's value for a lower-is-better metric) is LESS "
                "ACCURATE, whatever the speed" if tolerance is not None else
                "; this run was stored before its accuracy verdict was")
    return (f"Pairs of processes, one of each side, run at once; the pairs are the units (pair k trains both sides "
            f"with training seed k; test A and B are {stored.get('test_metric_of_side', 'median')}s over the pairs). "
            f"Speed band ±{stored.get('threshold')}"
            f"{accuracy}.")
