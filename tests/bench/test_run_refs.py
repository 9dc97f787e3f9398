"""Naming stored runs of other machines: ``MACHINE/N``, and errors that say how."""

import pytest
from distbench.cli.main import main

from tests.bench.runs import INFO, MACHINE, record, samples, save

OTHER = "x86_64-4cpu-nogpu-test01"
CELL = "reuters_cnn-default-custom"


@pytest.fixture
def results(tmp_path):
    other = {"distbench": {**INFO["distbench"], "cpu_model": "Other CPU", "cpu_count": 4}}
    for k in range(2):
        save(tmp_path, {CELL: [record(CELL, samples(10.0, seed=k))]})
    for k in range(3):
        save(tmp_path, {CELL: [record(CELL, samples(5.0, seed=5 + k))]}, machine=OTHER, info=other)
    return tmp_path


def _compare(capsys, results, *refs):
    code = main(["compare", *refs, "--results", str(results)])
    out, err = capsys.readouterr()
    return code, out, err


def test_another_machine_s_run_by_machine_and_number(capsys, results):
    """Another machine's run could be named only by its file's whole path."""
    code, out, _ = _compare(capsys, results, f"{MACHINE}/2", f"{OTHER}/latest~1")
    assert code == 0 and f"A: {MACHINE}/0002_" in out and f"B: {OTHER}/0002_" in out, out


@pytest.mark.parametrize("refs, message", [
    ([f"{MACHINE}/3", f"{OTHER}/1"], f"Run number 3 does not exist in {{results}}/{MACHINE}. Stored: 0001-0002. "
                                      f"Another machine's: {OTHER}/3."),
    ([f"{OTHER}/latest~3", f"{OTHER}/1"], f"Run '{OTHER}/latest~3' does not exist: only 3 stored run(s)"),
    (["x86_64-2cpu-nogpu-nosuch/1", f"{OTHER}/1"], f"No stored run at 'x86_64-2cpu-nogpu-nosuch/1': the file does "
                                                    f"not exist. Machines with runs in {{results}}: {MACHINE}, {OTHER}"),
    (["{results}/" + OTHER, f"{OTHER}/1"], f"'{{results}}/{OTHER}' is a folder: give one stored run (a file in it, "
                                            f"e.g. {{results}}/{OTHER}/0003_"),
])
def test_a_reference_that_names_no_run_says_how_to_name_one(capsys, results, refs, message):
    code, out, err = _compare(capsys, results, *[r.format(results=results) for r in refs])
    assert code == 2 and message.format(results=results) in err and err.count("\n") == 1, err


def test_a_number_two_files_share_is_refused_naming_both(capsys, results):
    """A machine folder copied into a results folder with runs of the same machine: 6, and
    MACHINE/6, named the first file of that number, silently; the other only by its path."""
    import shutil

    folder = results / MACHINE
    first = sorted(folder.glob("0002_*"))[0]
    copy = folder / first.name.replace("_abc12345_", "_0ther000_")
    shutil.copy(first, copy)
    for ref in (f"{MACHINE}/2", f"{MACHINE}/latest"):
        code, out, err = _compare(capsys, results, f"{MACHINE}/1", ref)
        assert code == 2 and err.count("\n") == 1 and f"Run {ref!r} is ambiguous: 2 files of" in err, err
        assert first.name in err and copy.name in err and "give the file's path" in err and "branches' results merged" in err
    code, out, _ = _compare(capsys, results, f"{MACHINE}/latest~1", str(copy))   # latest~N counts numbers, not files
    assert code == 0 and f"A: {MACHINE}/0001_" in out, out
    numbers = len({p.name[:4] for p in folder.glob("*.json")})
    code, _, err = _compare(capsys, results, f"{MACHINE}/latest~{numbers}", str(copy))   # the files outnumber them
    assert code == 2 and (f"only {numbers} stored run(s) ({numbers + 1} files: some share a number)") in err, err
