"""``distbench report`` writes report.html: parsed here, not looked at. Every cell is in it,
every chart is an inline SVG, nothing points outside the page, the injected regression is
marked and only it, and two machines are side by side."""

import datetime as dt
import html
import os
import math
import random
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from distbench.cli.main import main

from tests.bench.runs import INFO, MACHINE, record, samples, save

OTHER = "x86_64-4cpu-nogpu-test01"
OTHER_INFO = {"distbench": {**INFO["distbench"], "cpu_model": "Other CPU", "cpu_count": 4}}
START = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.timezone.utc)
CELLS = ["reuters_cnn-default-fit", "reuters_cnn-default-custom", "multibranch-default-fit", "matmul-default"]


class Page(HTMLParser):
    """The page's tags and attributes, its figures (each with its SVGs and caption text),
    and the text of its tables."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.attributes, self.figures, self.cells = [], [], [], []
        self.sections: dict[str, list[str]] = {}   # h2 id -> the text of its table cells
        self._figure = self._td = None
        self._section = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "h2":
            self._section = attrs.get("id", "")
        self.attributes += [(tag, k, v) for k, v in attrs.items()]
        if tag == "figure":
            self._figure = {"class": attrs.get("class"), "cell": attrs.get("data-cell"), "svg": 0, "img": 0,
                            "text": "", "regression": ""}
            self.figures.append(self._figure)
        elif self._figure is not None and tag in ("svg", "img"):
            self._figure[tag] += 1
        elif self._figure is not None and attrs.get("class") == "regression":
            self._figure["regression"] = "open"
        if tag == "td":
            self._td = ""

    def handle_endtag(self, tag):
        if tag == "figure":
            self._figure = None
        if tag == "td" and self._td is not None:
            self.cells.append(self._td.strip())
            self.sections.setdefault(self._section, []).append(self._td.strip())
            self._td = None

    def handle_data(self, data):
        if self._figure is not None:
            self._figure["text"] += data
            if self._figure["regression"] == "open":
                self._figure["regression"] = data
        if self._td is not None:
            self._td += data


def _results(tmp_path):
    """12 daily runs of one machine, its reuters fit twice as slow from run 9; 3 runs of another machine."""
    rng = random.Random(5)
    root = tmp_path / "results"
    for k in range(12):
        cells = {}
        for cell in CELLS:
            median = 20.0 if cell == CELLS[0] and k >= 8 else 10.0
            cells[cell] = [record(cell, samples(median * math.exp(rng.gauss(0, 0.05)), seed=k, spread=0.01), 0.6)]
        replicate = record(CELLS[0], samples(10.0, seed=k))
        replicate["config"]["init_seed"] = 1
        cells[CELLS[0] + "-init1"] = [replicate]
        last = save(root, cells, commit=f"c{k:07d}", when=START + dt.timedelta(days=k))
    for k in range(3):
        save(root, {c: [record(c, samples(5.0 * math.exp(rng.gauss(0, 0.05)), seed=k, spread=0.01), 0.6)]
                    for c in CELLS[:2]}, OTHER, OTHER_INFO, commit=f"d{k:07d}", when=START + dt.timedelta(days=k))
    return str(root), str(last)


def _report(capsys, tmp_path, *extra):
    results, latest = _results(tmp_path)
    out = tmp_path / "report"
    given = [] if "--out" in extra else ["--out", str(out)]   # an option given twice is refused
    code = main(["report", "--run", latest, "--results", results, *given, *extra])
    printed = capsys.readouterr()
    return code, out, printed


def test_the_page_holds_every_cell_and_chart_and_nothing_from_outside(capsys, tmp_path):
    code, out, printed = _report(capsys, tmp_path)
    assert code == 0 and "report.html" in printed.out
    assert max(map(len, printed.out.splitlines())) <= 120, printed.out   # the "Wrote ..." line wraps
    text = (out / "report.html").read_text()
    page = Page(text)
    for cell in CELLS:
        assert cell in page.sections["summary"], cell                # the summary's rows
    assert sorted(f["cell"] for f in page.figures if f["class"] == "trend") == sorted(CELLS)   # one each, no replicate
    trends = {f["cell"]: f for f in page.figures if f["class"] == "trend"}
    ids = [v for tag, k, v in page.attributes if k == "id"]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1][:5]   # unique across every chart
    assert page.figures and all(f["svg"] == 1 and f["img"] == 0 for f in page.figures)
    assert {"script", "link", "img", "iframe", "object"}.isdisjoint(page.tags)
    assert all(v.startswith("#") for tag, k, v in page.attributes if k in ("href", "xlink:href"))
    assert not [a for a in page.attributes if a[1] == "src"]
    assert "url(" not in re.sub(r"url\(#[^)]*\)", "", text)         # CSS and SVG: in-page references only
    assert set(re.findall(r"https?://[^\s\"'<>)]+", text)) <= {"http://www.w3.org/2000/svg",
                                                                "http://www.w3.org/1999/xlink"}
    # The doubling is marked a regression with its size and commit; nothing else is.
    flagged = {cell: f["regression"] for cell, f in trends.items() if f["regression"]}
    assert list(flagged) == [CELLS[0]], flagged
    assert re.match(r"\+(9\d|1[01]\d)\.\d% from run 0008 \(c0000007\) to run 0009 \(c0000008\): compare says slower",
                    flagged[CELLS[0]]), flagged
    # Hover: every point of a trend carries its run and commit.
    start = text.index(f'data-cell="{CELLS[1]}"')
    chart = text[start:text.index("</figure>", start)]
    assert all(f"run {k:04d}, 2026-11-{k:02d} 09:00 UTC, commit c{k - 1:07d}" in chart for k in range(1, 13))
    # Machines side by side: the fingerprints' difference once, each shared cell's ratio.
    machines = text[text.index('id="machines"'):]
    assert "cpu_model" in machines and "Other CPU" in machines and "Test CPU" in machines
    assert "These runs are of different commits of the project measured (c0000011, d0000002)" in machines
    assert {f.get("cell") for f in page.figures if f["class"] == "machines"} == {None}
    table = page.sections["machines"]
    for cell in ("default-fit", "default-custom"):   # 20 and 10 ms here, 5 ms there
        row = table[table.index(cell):][:5]
        low, high = (0.2, 0.3) if cell == "default-fit" else (0.4, 0.6)
        # Its 3 runs less the one compared: this machine's noise stands for it, and the row says so.
        assert low < float(row[3].split()[0]) < high and row[4] in ("faster (one machine's noise)",
                                                                     "undecided (one machine's noise)"), row
    assert "multibranch" not in "".join(table)   # measured on one machine only


def test_reference_machine_and_a_bad_reference(capsys, tmp_path):
    code, out, _ = _report(capsys, tmp_path, "--reference", OTHER)
    assert code == 0
    page = Page((out / "report.html").read_text())
    table = page.sections["machines"]
    row = table[table.index("default-fit"):][:5]
    assert re.fullmatch(r"[34]\.\d\d \[.*\]", row[3]), row   # the reference is 5 ms; this machine 20 ms
    code, out2, printed = _report(capsys, tmp_path / "again", "--reference", "nosuch", "--out",
                                  str(tmp_path / "nothing"))
    assert code == 2 and "--reference 'nosuch' is not a machine with stored runs; known: " in printed.err
    assert not (tmp_path / "nothing").exists()


def test_a_run_number_among_machines_imports_tensorflow_quietly(tmp_path):
    """With two machine folders a run number means this machine's run, whose id needs
    TensorFlow's device list: its C++ start-up lines stay out of the terminal, and the
    answer (no run of this machine here) is one line."""
    results, _ = _results(tmp_path)
    done = subprocess.run([sys.executable, "-m", "distbench", "report", "--run", "12", "--results", results,
                           "--out", str(tmp_path / "report")], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("distbench: error: No stored runs in ") and len(done.stderr.splitlines()) == 1, \
        done.stderr
    # ... naming the machines whose runs are there, and how to name one.
    assert done.stderr.rstrip().endswith(f"Other machines' runs are here ({MACHINE}, {OTHER}): name one as MACHINE/N "
                                         "or MACHINE/latest."), done.stderr
    assert not (tmp_path / "report").exists()


def test_a_bar_of_a_cell_measured_on_some_of_its_processes_is_hatched_and_counted(tmp_path):
    """Its table row said ``2 of 3``; its bar was drawn like a whole cell's."""
    from distbench.core.config import CellSpec
    from distbench.core.records import failed
    from distbench.render import run_charts
    from distbench.storage.files import load

    crash = failed(CellSpec("reuters_cnn", "default", "custom"), "worker pid 7 exited with code 9", error_kind="crash")
    path = save(tmp_path, {CELLS[0]: [record(CELLS[0], samples(9.0))],
                           CELLS[1]: [record(CELLS[1], samples(9.0)), crash, record(CELLS[1], samples(9.2, seed=1))]})
    fig, _ = run_charts.step_time(load(path))
    (ax,) = [a for a in fig.axes if a.get_visible()]
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 1 and len(ax.patches) == 2
    assert [t.get_text() for t in ax.texts] == ["2 of 3"] and "hatched: some processes failed" in ax.get_title()


def test_verdicts_against_the_run_before_say_when_its_fingerprint_differs(capsys, tmp_path):
    """A run with TF_ENABLE_ONEDNN_OPTS=0 set, against the run before it: the page called it
    "the last run that measured these cells the same way" and said nothing of the variable
    (``compare`` says "Machines differ in")."""
    results, latest = _results(tmp_path)
    env_info = {"distbench": {**INFO["distbench"], "env": {"TF_ENABLE_ONEDNN_OPTS": "0"}}}
    off = save(results, {c: [record(c, samples(10.0, seed=40, spread=0.01), 0.6)] for c in CELLS}, info=env_info,
               commit="e0000000", when=START + dt.timedelta(days=12))
    for run, said in ((latest, False), (off, True)):
        out = tmp_path / f"report-{said}"
        assert main(["report", "--run", str(run), "--results", results, "--out", str(out)]) == 0
        text = (out / "report.html").read_text()
        verdicts = text[text.index("Against the last run that measured"):]
        assert ("Machines differ in: env: {} -&gt; {&#39;TF_ENABLE_ONEDNN_OPTS&#39;: &#39;0&#39;}: these verdicts "
                "measure that\ndifference" in verdicts) is said, verdicts[:2000]
    capsys.readouterr()


def test_a_machine_with_one_run_is_judged_with_the_other_s_noise_and_the_page_says_so(capsys, tmp_path):
    """A new node with one stored run: its verdicts used the reference's noise alone, as
    compare marks it ("8 runs (A)"), while the page said both machines' noise was used."""
    results, latest = _results(tmp_path)
    for path in sorted((tmp_path / "results" / OTHER).glob("*.json"))[1:]:
        path.unlink()
    assert main(["report", "--run", latest, "--results", results, "--out", str(tmp_path / "report")]) == 0
    capsys.readouterr()
    text = html.unescape((tmp_path / "report" / "report.html").read_text())
    assert (f"2 cells judged with {MACHINE}'s noise alone, standing for {OTHER}'s, which has fewer than 3 stored runs "
            "that measured them so besides the run compared: reuters_cnn-default-fit, reuters_cnn-default-custom") in text
    table = Page(text).sections["machines"]
    row = table[table.index("default-custom"):][:5]
    assert row[4].endswith(" (one machine's noise)"), row


def test_a_log_scaled_accuracy_chart_labels_its_axis_in_plain_numbers_apart(tmp_path):
    """Cells 1.5 to 9 ms apart: the log axis's minor ticks had read 3x10^0 4x10^0 ..., run together."""
    from distbench.render import run_charts
    from distbench.storage.files import load

    cells = {cell: [record(cell, samples(median, seed=k, spread=0.01), 0.6)]
             for k, (cell, median) in enumerate(zip(CELLS[:2], (1.5, 9.0)))}
    fig, _ = run_charts.accuracy(load(save(tmp_path / "results", cells)))
    fig.canvas.draw()
    (ax,) = [a for a in fig.axes if a.get_xscale() == "log"]
    shown = [t.get_text() for t in ax.get_xticklabels() + ax.get_xticklabels(minor=True) if t.get_text()]
    assert shown and all(re.fullmatch(r"\d+(\.\d+)?", text) for text in shown), shown
    assert ax.get_xlim()[0] < 1.5 and ax.get_xlim()[1] > 9.0   # neither point at an edge


def test_verdicts_against_the_run_before_mark_a_cell_that_learned_worse(capsys, tmp_path):
    """The same speed, the test accuracy down from 0.6 to 0.3: the page's verdict read "same"
    in an unmarked row, where ``compare`` and ``check`` call it less accurate."""
    results, _ = _results(tmp_path)
    worse = save(results, {c: [record(c, samples(10.0, seed=41, spread=0.01), 0.3 if c == CELLS[1] else 0.6)]
                           for c in CELLS}, commit="e0000001", when=START + dt.timedelta(days=12))
    out = tmp_path / "worse"
    assert main(["report", "--run", str(worse), "--results", results, "--out", str(out)]) == 0
    capsys.readouterr()
    text = (out / "report.html").read_text()
    start = text.index("Against the last run that measured")
    table = text[start:text.index("</table>", start)]
    marked = [html.unescape(re.sub(r"<[^>]+>", " ", row)) for row in re.findall(r'<tr class="bad">(.*?)</tr>', table,
                                                                                   re.S)]
    assert len(marked) == 1 and CELLS[1] in marked[0] and "less accurate" in marked[0], marked


def test_the_accuracy_chart_s_guard_band_ends_where_a_share_does(tmp_path):
    """The guard's band (mean + 3 sd of the reference's seeds) ran to 1.09 on the chart, where
    the tables clip an accuracy to 1.000 (a user's trial)."""
    from distbench.render import run_charts
    from distbench.storage.files import load

    cells = {}
    for k, cell in enumerate(CELLS[:2]):
        rec = record(cell, samples(2.0 + k, seed=k, spread=0.01), 0.9)
        rec["accuracy_guard"] = {"status": "ok", "reference": {"low": 0.71, "high": 1.089}}
        cells[cell] = [rec]
    fig, _ = run_charts.accuracy(load(save(tmp_path / "results", cells)))
    (band,) = [p for ax in fig.axes for p in ax.patches]
    ys = (band.get_y(), band.get_y() + band.get_height())   # a Rectangle in axes' x, data y
    assert ys == pytest.approx((0.71, 1.0)), ys
