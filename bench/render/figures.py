"""matplotlib figures, written out as PNG files (report.md) or inline SVG (report.html).

Every chart of the report is a figure built once here or in :mod:`distbench.render.run_charts`
and :mod:`distbench.render.history_charts`; :func:`svg` turns one into an ``<svg>`` element
that needs nothing outside the page: text as text, no metadata, no external reference, ids
unique to the chart, and a tooltip (``<title>``) on every element given one.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

SVG = "http://www.w3.org/2000/svg"
XLINK = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG)
ET.register_namespace("xlink", XLINK)

# One colour per strategy and one marker per loop, the same in every chart.
STRATEGY_COLOURS = {"default": "C0", "one_gpu": "C1", "virtual": "C2", "mirrored": "C3", "tpu": "C4",
                    "multi_worker": "C5", "parameter_server": "C6"}
LOOP_MARKERS = {"fit": "o", "custom": "s", "train_on_batch": "^", None: "D"}


def pyplot():
    """pyplot on the file-only backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def colour(strategy: str) -> str:
    return STRATEGY_COLOURS.get(strategy, "C7")


def marker(loop: str | None) -> str:
    return LOOP_MARKERS.get(loop, "D")


def save_png(fig, path: Path) -> None:
    """Writes ``fig`` as a PNG; the figure stays open (for :func:`svg`, which closes it)."""
    fig.savefig(path, dpi=100, bbox_inches="tight")


def svg(fig, name: str, tooltips: dict[str, str] | None = None) -> str:
    """``fig`` as one self-contained ``<svg>`` element, then closed. ``name`` prefixes every
    id in it (matplotlib numbers its groups from 1 in every figure), so that ids are unique
    in a page of many charts; ``tooltips``: an artist's gid -> the text shown on hover."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    pyplot().close(fig)
    root = ET.fromstring(buffer.getvalue())
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag == f"{{{SVG}}}metadata":
                parent.remove(child)
    for element in root.iter():
        text = (tooltips or {}).get(element.get("id", ""))
        if text:
            title = ET.Element(f"{{{SVG}}}title")
            title.text = text
            element.insert(0, title)
    _prefix_ids(root, name)
    root.set("class", "chart")
    return ET.tostring(root, encoding="unicode")


def _prefix_ids(root, name: str) -> None:
    """Every ``id`` as ``name-id``, and every reference to one (``url(#id)``, ``href="#id"``) with it."""
    ids = {e.get("id") for e in root.iter() if e.get("id")}
    pattern = re.compile(r"(url\(#|^#)([^)\s]+)")

    def renamed(match: re.Match) -> str:
        target = match.group(2)
        return f"{match.group(1)}{name}-{target}" if target in ids else match.group(0)

    for element in root.iter():
        for key, value in element.attrib.items():
            if key == "id":
                element.set(key, f"{name}-{value}")
            elif "#" in value:
                element.set(key, pattern.sub(renamed, value))


def plain(text: str) -> str:
    """A name as matplotlib should print it: ``$`` is not the start of mathematics."""
    return text.replace("$", r"\$")
