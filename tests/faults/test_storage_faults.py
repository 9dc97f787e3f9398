"""Faults at save and load time: nothing measured is lost without saying where it is, and one
bad file does not break every command."""

import datetime as dt
import json
import multiprocessing
import os

import pytest
from distbench.cli.main import main
from distbench.core.errors import UserError
from distbench.storage import files
from distbench.storage.files import Storage, load

from tests.bench.runs import MACHINE, document, record, samples, save

CELL = "reuters_cnn-default-fit"


def _cells(median=10.0, seed=0):
    return {CELL: [record(CELL, samples(median, seed=seed, spread=0.01), 0.58)]}


def _save_at(root: str, second: int, count: int, start, out) -> None:
    """In a separate process: waits for the start, then ``count`` saves, each stamped its own second."""
    start.wait()
    names = []
    for k in range(count):
        doc = document(_cells(seed=second + k))
        doc["datetime"] = dt.datetime(2026, 12, 1, 6, (second + k) // 60 % 60, (second + k) % 60,
                                      tzinfo=dt.timezone.utc).isoformat()
        names.append(Storage(root).save(doc, MACHINE).name)
    out.put(names)


def test_two_processes_saving_at_once_with_different_timestamps_get_different_numbers(tmp_path):
    """The claimed file name holds the time stamp, so a number claimed by linking to it was
    claimed twice when two runs saved in different seconds."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_save_at, args=(str(tmp_path), second, 40, start, out)) for second in (0, 1000)]
    for p in procs:
        p.start()
    names = out.get(timeout=120) + out.get(timeout=120)
    for p in procs:
        p.join(timeout=60)
    numbers = [name[:4] for name in names]
    assert len(set(numbers)) == 80, sorted(numbers)
    assert sorted(p.name for p in (tmp_path / MACHINE).iterdir()) == sorted(names)   # no claims or temp files left


def test_a_file_system_without_hard_links_still_saves(tmp_path, monkeypatch):
    def no_links(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = save(tmp_path, _cells())
    assert load(path).results[CELL].measured


def test_a_save_that_fails_keeps_the_run_and_says_where(tmp_path, monkeypatch):
    real = os.replace

    def full(src, dst):   # the run's own file cannot be put in place (the temporary one was written)
        if str(dst).endswith(".json"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(UserError, match="No space left on device. It is kept in .*part") as raised:
        save(tmp_path, _cells())
    kept = str(raised.value).split("It is kept in ")[1].split(";")[0]
    monkeypatch.undo()
    with open(kept) as f:
        assert json.load(f)["benchmarks"][0]["param"] == CELL


@pytest.mark.slow
def test_run_prints_its_table_when_the_save_fails(tmp_path, monkeypatch, capsys):
    """The disk fills between the check before the run and the save after it (an OSError
    injected at the write of the run's file)."""
    def full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "atomic_write_text", full)
    code = main(["run", "--workload", "matmul", "--strategy", "default", "--no-peak", "--matmul-repeats", "2",
                 "--results", str(tmp_path / "results")])
    out, err = capsys.readouterr()
    assert code == 2 and "No space left on device" in err
    assert "matmul" in out and "GFLOP/s" in out          # the measured table, not lost


def test_one_corrupt_run_does_not_break_compare(tmp_path, capsys):
    for seed, median in enumerate([10.0, 10.2, 10.1, 10.0], 1):
        save(tmp_path, _cells(median, seed))
    broken = tmp_path / MACHINE / "0005_deadbeef_20261201_060000.json"
    broken.write_text('{"machine_info": {')
    code = main(["compare", "1", "4", "--results", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0 and any(line.startswith(CELL.partition("-")[2] + " ") for line in out.splitlines())
    assert f"skipped in the history: {broken} is not valid JSON" in err


def test_a_file_cut_inside_a_string_says_where_in_plain_words(tmp_path):
    """json's "Unterminated string starting at" read "... starting at at line 1"."""
    broken = tmp_path / MACHINE / "0001_deadbeef_20261201_060000.json"
    broken.parent.mkdir()
    broken.write_text('{"machine_info": "cut')
    with pytest.raises(UserError, match=r"is not valid JSON \(Unterminated string starting at line 1\): truncated"):
        load(broken)


@pytest.mark.parametrize("damage, says", [
    (lambda rec: rec.pop("config"), "TypeError: CellSpec.__init__() missing"),
    (lambda rec: rec.pop("steps"), "KeyError: 'steps'"),
    (lambda rec: rec["steps"].update(samples=None), ""),
])
def test_a_run_whose_cell_is_damaged_is_left_out_of_the_history_not_a_traceback(tmp_path, capsys, damage, says):
    """A run valid as JSON whose cell lacks its settings or step times: read lazily, it had
    ended compare and report with a traceback when only their history's noise read it."""
    for seed, median in enumerate([10.0, 10.2, 10.1, 10.0], 1):
        save(tmp_path, _cells(median, seed))
    broken = save(tmp_path, _cells(10.1, 9))
    data = json.loads(broken.read_text())
    damage(data["benchmarks"][0]["extra_info"]["distbench"]["repeats"][0])
    broken.write_text(json.dumps(data))
    code = main(["compare", "1", "4", "--results", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0 and any(line.startswith(CELL.partition("-")[2] + " ") for line in out.splitlines()), out + err
    assert f"skipped in the history: {broken} does not read as a run of schema version 1 ({says}" in err, err


def _first_repeats(data: dict) -> list:
    return data["benchmarks"][0]["extra_info"]["distbench"]["repeats"]


@pytest.mark.parametrize("damage, says", [
    (lambda data: data.update(datetime="yesterday"), "ValueError: Invalid isoformat string"),
    (lambda data: data.update(datetime=None), "TypeError: fromisoformat"),
    (lambda data: _first_repeats(data)[0].update(accuracy=None), "AttributeError: 'NoneType'"),
    (lambda data: _first_repeats(data).clear(), None),
])
def test_a_run_damaged_where_only_report_or_check_read_is_one_line_not_a_traceback(tmp_path, capsys, damage, says):
    """A time that is no ISO date (report's trends read it), a null accuracy record (check's
    guard metric; a null test metric in it is a lost one, and valid), a cell without records: report ended in a traceback for any one such
    run of the folder, and check exited 1, a regression to a CI gate."""
    for seed, median in enumerate([10.0, 10.2, 10.1, 10.0], 1):
        save(tmp_path, _cells(median, seed))
    broken = save(tmp_path, _cells(10.1, 9))
    data = json.loads(broken.read_text())
    damage(data)
    broken.write_text(json.dumps(data))
    save(tmp_path, _cells(10.0, 10))   # the latest, which report reads
    said = (f"{broken} does not read as a run of schema version 1 ({says}" if says else
            f"{broken} has no record of cell {CELL}, which it lists: truncated or corrupted.")
    assert main(["report", "--run", f"{MACHINE}/latest", "--results", str(tmp_path), "--out", f"{tmp_path}-report"]) == 0
    assert f"skipped in the history: {said}" in capsys.readouterr().err
    assert main(["compare", "1", "4", "--results", str(tmp_path)]) == 0
    assert f"skipped in the history: {said}" in capsys.readouterr().err
    assert main(["check", "--baseline", "1", "--run", "5", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"distbench: error: {said}") and err.count("\n") == 1, err


def _save_forever(root: str) -> None:
    second = 0
    while True:
        _save_at_once(root, second)
        second += 1


def _save_at_once(root: str, second: int) -> None:
    doc = document(_cells(seed=second))
    Storage(root).save(doc, MACHINE)


def test_a_parent_killed_while_saving_leaves_only_whole_runs(tmp_path):
    """SIGKILL lands mid-save (a process saving as fast as it can): every run file left is
    whole, and the next save still gets a fresh number."""
    import signal
    import time

    ctx = multiprocessing.get_context("spawn")
    saver = ctx.Process(target=_save_forever, args=(str(tmp_path),))
    saver.start()
    deadline = time.monotonic() + 60
    while not list((tmp_path / MACHINE).glob("0005_*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(saver.pid, signal.SIGKILL)
    saver.join()
    runs = Storage(tmp_path).runs()
    assert len(runs) >= 5
    for path in runs:
        assert load(path).results[CELL].measured            # no truncated run file
    after = save(tmp_path, _cells())
    assert int(after.name[:4]) > max(int(p.name[:4]) for p in runs)
