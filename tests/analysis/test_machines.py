"""Machines side by side judge a cell as ``compare`` does (one judge for one question)."""

import json

from distbench.analysis.machines import side_by_side
from distbench.cli.main import main
from distbench.storage.files import Storage, load_history

from tests.bench.runs import INFO, MACHINE, record, samples, save

CELL = "reuters_cnn-default-fit"
OTHER = "x86_64-4cpu-nogpu-test01"
OTHER_INFO = {"distbench": {**INFO["distbench"], "cpu_model": "Other CPU", "cpu_count": 4}}


def _run(root, median, seed, batch=32, machine=MACHINE, info=INFO):
    r = record(CELL, samples(median, seed=seed, spread=0.01), 0.58)
    r["config"]["global_batch"] = batch
    return save(root, {CELL: [r]}, machine=machine, info=info)


def test_the_machine_view_s_interval_is_compare_s(tmp_path, capsys):
    """This machine's history holds ten runs of another batch under the same id, 20-40% apart:
    the page pooled them into the noise (sd 0.129 where compare's was 0.080 in a user's
    results), so a cell compare calls slower read undecided there."""
    root = tmp_path / "results"
    for k in range(10):                                    # batch 64: swings of a third
        _run(root, 20.0 * (1.35 if k % 2 else 1.0), 100 + k, batch=64)
    for k, median in enumerate([10.0, 10.4, 10.1, 10.5]):   # batch 32: within 5%; the latest is run 14
        latest = _run(root, median, k, batch=32)
    for k, median in enumerate([5.0, 5.2, 5.05, 5.25]):     # the other machine: twice as fast
        other = _run(root, median, 50 + k, machine=OTHER, info=OTHER_INFO)
    code = main(["compare", str(other), str(latest), "--results", str(root), "--format", "json"])
    (compared,) = json.loads(capsys.readouterr().out)["cells"]
    assert code == 0 and compared["verdict"] == "slower", compared
    storage = Storage(root)
    histories = {m: load_history(storage.runs(m))[0] for m in (MACHINE, OTHER)}
    (row,) = side_by_side(histories, OTHER).rows
    judged = row.latest[MACHINE].comparison
    assert judged.verdict == "slower" and list(judged.ratio_ci) == list(compared["ratio_ci"]), (judged, compared)
