"""What the run summary says under its table, and compare's notes on runs of two machines."""

import json

from distbench.cli.main import main
from distbench.render.summary import render_summary
from distbench.storage.files import load

from tests.bench.runs import INFO, MACHINE, record, samples, save

MIRRORED_NOTE = "no GPU found: MirroredStrategy runs one replica on the CPU"


def _disturbed(rec, share):
    rec["disturbance"] = {"cores": 2, "disturbed": True, "others_cpu": share, "steal": 0.0, "load_1m": 1.5}
    return rec


def _results(tmp_path):
    mirrored = [record("reuters_cnn-mirrored-custom", samples(12.0, seed=k)) for k in range(2)]
    for rec in mirrored:
        rec["strategy"]["notes"] = [MIRRORED_NOTE]
    workers = [record("reuters_cnn-parameter_server-custom", samples(15.0, seed=5 + k), replicas=2) for k in range(2)]
    for k, rec in enumerate(workers):   # a note of each process's own: not the cell's
        rec["strategy"].update(notes=[f"coordinator 127.0.0.1:{4000 + k}, workers 127.0.0.1:{5000 + k}"],
                               shared_hardware=True)
        _disturbed(rec, 0.5)            # its own workers and server: not a disturbance
    cells = {"reuters_cnn-default-custom": [_disturbed(record("reuters_cnn-default-custom", samples(10.0)), 0.37),
                                            _disturbed(record("reuters_cnn-default-custom", samples(10.0, seed=1)),
                                                       0.58)],
             "reuters_cnn-mirrored-custom": mirrored, "reuters_cnn-parameter_server-custom": workers}
    return load(save(tmp_path, cells))


def test_the_summary_says_which_cells_were_disturbed_and_what_their_strategy_noted(tmp_path):
    """The 120-column summary said neither: "is MirroredStrategy worth it?" read as a 20%
    cost here, while the full table alone said it ran one replica on the CPU; and every
    cell timed while others used half the CPU looked like the machine's own speed."""
    text = render_summary(_results(tmp_path).results)
    lines = text.splitlines()
    assert f"note (1): {MIRRORED_NOTE}: reuters_cnn-mirrored-custom" in lines, text
    assert not any("127.0.0.1" in line for line in lines), text
    assert ("\nnote (1): local processes share this machine's CPUs: the cost of distributing across processes, not "
            "scaling: reuters_cnn-parameter_server-custom\n") in text.replace("\n    ", " ") + "\n", text
    assert ("\nDISTURBED (1): other processes used 37%-58% of the CPU while timed: steps may be slower than this machine's "
            "own: reuters_cnn-default-custom\n") in text.replace("\n    ", " ") + "\n", text
    assert max(map(len, lines)) <= 120
    stolen = record("reuters_cnn-default-fit", samples(10.0))   # the hypervisor's share marked it, not others'
    stolen["disturbance"] = {"disturbed": True, "others_cpu": 0.001, "steal": 0.12}
    text = render_summary(load(save(tmp_path, {stolen["cell"]: [stolen]})).results).replace("\n    ", " ")
    assert ("DISTURBED (1): other processes used 0.1% of the CPU and the hypervisor gave 12% to other guests while "
            "timed") in text, text
    one = record("reuters_cnn-multi_worker-custom", samples(15.0), replicas=2)   # --repeats 1: each port note was a line
    one["strategy"]["notes"] = ["2 worker processes (127.0.0.1:57155, 127.0.0.1:60585)"]
    assert "127.0.0.1" not in render_summary(load(save(tmp_path, {one["cell"]: [one]})).results)
    alone = record("reuters_cnn-multi_worker-custom", samples(15.0))   # --workers 1: no process to distribute to
    alone["strategy"].update(strategy="multi_worker", workers=1, shared_hardware=True,
                             notes=["1 worker process (--workers 1: this process alone, no cluster)"])
    text = render_summary(load(save(tmp_path, {alone["cell"]: [alone]})).results)
    assert "this process alone" in text and "the cost of distributing" not in text, text
    served = record("reuters_cnn-parameter_server-custom", samples(15.0))   # one worker, a ps, a coordinator
    served["strategy"].update(strategy="parameter_server", workers=1, shared_hardware=True)
    assert "the cost of distributing" in render_summary(load(save(tmp_path, {served["cell"]: [served]})).results)


def test_compare_across_machines_says_whose_noise_it_used_and_which_side_was_disturbed(tmp_path, capsys):
    """Runs of two machines: the interval came from A's machine alone (B's had one run), and
    B was timed while other processes used the CPU; compare's table said "8 runs" and nothing else."""
    cell = "reuters_cnn-default-custom"
    for k, median in enumerate([10.0, 10.4, 10.1, 10.5]):
        a = save(tmp_path, {cell: [record(cell, samples(median, seed=k, spread=0.01))]})
    other = {"distbench": {**INFO["distbench"], "cpu_model": "Other CPU"}}
    b = save(tmp_path, {cell: [_disturbed(record(cell, samples(5.0, seed=9, spread=0.01)), 0.6)]},
             machine="x86_64-2cpu-nogpu-test01", info=other)
    assert main(["compare", str(a), str(b), "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("default-custom "))
    assert "3 runs (A)" in row, out   # A itself left out of its machine's noise, as B of its
    assert ("noise of one machine (1): A's machine's noise stands for B's too, which has fewer than 3 stored runs that "
            "measured the cell so:") in out.replace("\n    ", " "), out
    assert "DISTURBED in B (1): other processes used 60% of the CPU while timed" in out and "in A" not in out
    assert main(["compare", str(a), str(b), "--results", str(tmp_path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["cells"][0]["noise_of"] == "A"
    assert MACHINE != "x86_64-2cpu-nogpu-test01"


def test_compare_and_the_report_name_distbench_s_own_build_apart_from_the_project_s_commit(tmp_path, capsys):
    """A wheel records no commit and every build is version 0.1.0: two machines' runs of one
    project commit made by different distbench builds got no warning; the report's warning
    compared project commits only, and named them as if they were distbench's."""
    from distbench.storage.provenance import code_hash
    from tests.bench.runs import document
    from distbench.storage.files import Storage

    cell = "reuters_cnn-default-custom"
    paths = []
    for k, code in enumerate(["1a2b3c4d5e6f", code_hash(), code_hash()]):
        doc = document({cell: [record(cell, samples(10.0, seed=k))]})
        doc["commit_info"]["distbench"] = {"version": "0.1.0", "commit": None, "code": code}
        paths.append(Storage(tmp_path).save(doc, MACHINE))
    assert main(["compare", str(paths[0]), str(paths[1]), "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"distbench differs: A 0.1.0 (code 1a2b3c4d5e6f), B 0.1.0 (code {code_hash()})." in out, out
    assert main(["compare", str(paths[1]), str(paths[2]), "--results", str(tmp_path)]) == 0   # one build
    assert "distbench differs" not in capsys.readouterr().out
    # An older run that recorded only its commit against a wheel's that recorded only its code: no
    # line at all before (neither key on both sides, and every version is 0.1.0).
    doc = document({cell: [record(cell, samples(10.0, seed=7))]})
    doc["commit_info"]["distbench"] = {"version": "0.1.0", "commit": "438b512e" * 5}
    older = Storage(tmp_path).save(doc, MACHINE)
    assert main(["compare", str(older), str(paths[1]), "--results", str(tmp_path)]) == 0
    assert (f"distbench builds cannot be matched (different records): A 0.1.0 (commit 438b512e), B 0.1.0 (code "
            f"{code_hash()}).") in capsys.readouterr().out
    assert main(["compare", str(older), str(paths[1]), "--results", str(tmp_path), "--format", "json"]) == 0
    builds = json.loads(capsys.readouterr().out)["builds"]   # the header's warning, in the document too
    assert builds == {"a": "0.1.0 (commit 438b512e)", "b": f"0.1.0 (code {code_hash()})", "differ": "unmatched"}
    assert len(code_hash()) == 12 and code_hash() == code_hash()


def test_a_share_below_one_percent_and_a_span_of_one_value_read_as_they_are():
    """``plan --detect 0.0001%`` printed "never: 0% does not exceed ..."; a DISTURBED span of
    two processes at 75% read "75%-75%"."""
    from distbench.render import summary, units

    assert units.percent(0.000001) == "0.0001%" and units.percent(0.03) == "3%" and units.percent(0) == "0%"
    assert summary._span([0.751, 0.749]) == "75%" and summary._span([0.37, 0.58]) == "37%-58%"


def test_a_cell_of_three_samples_shows_no_95_interval(tmp_path):
    """A parameter-server cell of 50 steps in units of 10 has 3 steady samples: their range
    was shown as its 95% interval (16.36-23.12), which holds the median about 75% of the time."""
    few = record("reuters_cnn-parameter_server-custom", [16.36e-3, 23.12e-3, 17.37e-3])
    text = render_summary(load(save(tmp_path, {few["cell"]: [few]})).results)
    (row,) = [line for line in text.splitlines() if line.startswith("parameter_server-custom ")]
    assert "n=3: none" in row and "16.36-23.12" not in row, text
