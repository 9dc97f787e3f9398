import functools
import json
import os
import threading
from pathlib import Path

import pytest
from distbench.core.errors import UserError
from distbench.storage.files import SCHEMA_VERSION, Storage, load

from tests.bench.runs import MACHINE, record, samples, save


def cells(median_ms=10.0, seed=0):
    return {"reuters_cnn-default-fit": [record("reuters_cnn-default-fit", samples(median_ms, seed=seed))]}


def test_round_trip_keeps_every_sample_and_pytest_benchmark_fields(tmp_path):
    path = save(tmp_path, cells())
    assert path.parent.name == MACHINE and path.name == "0001_abc12345_20261122_060000.json"
    run = load(path)
    assert run.number == 1 and run.machine_id == MACHINE
    stored = run.cells()["reuters_cnn-default-fit"][0]
    assert stored["steps"]["samples"] == samples(10.0)
    data = json.loads(path.read_text())
    assert data["distbench"]["schema_version"] == SCHEMA_VERSION
    assert set(data) >= {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    bench = data["benchmarks"][0]
    assert bench["param"] == "reuters_cnn-default-fit" and bench["group"] == "reuters_cnn"
    assert bench["stats"]["median"] == pytest.approx(stored["step_time"]["median"])
    assert bench["stats"]["rounds"] == 150


def test_runs_are_numbered_in_order(tmp_path):
    paths = [save(tmp_path, cells()) for _ in range(3)]
    assert [p.name[:4] for p in paths] == ["0001", "0002", "0003"]
    assert Storage(tmp_path).runs() == paths


def test_after_run_9999_come_10000_and_on_and_latest_is_the_newest(tmp_path):
    """Run 10000 was saved as 10000_...json, which the file pattern (four digits) did not
    match: latest stayed on 9999 and every later save claimed 10000 again."""
    first = save(tmp_path, cells())
    first.rename(first.with_name("9999" + first.name[4:]))
    paths = [save(tmp_path, cells()) for _ in range(2)]
    assert [p.name.split("_")[0] for p in paths] == ["10000", "10001"]
    storage = Storage(tmp_path)
    assert storage.resolve("latest", lambda: MACHINE) == paths[1]
    assert storage.resolve("latest~2", lambda: MACHINE).name.startswith("9999_")
    assert storage.resolve("10000", lambda: MACHINE) == paths[0]


def test_concurrent_saves_never_overwrite_or_leave_partial_files(tmp_path):
    saved, errors = [], []

    def worker():
        try:
            saved.append(save(tmp_path, cells()))
        except Exception as exc:   # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(p.name[:4] for p in saved) == [f"{i:04d}" for i in range(1, 9)]
    folder = tmp_path / MACHINE
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in saved)   # no temp files
    for p in saved:
        load(p)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"machine_info": {', "is not valid JSON .*truncated or corrupted"),
        ('{"benchmarks": []}', "is not a distbench run .*pytest-benchmark compare"),
        ('{"distbench": {"schema_version": 0}, "benchmarks": []}', "schema version 0; this distbench reads version 1 only: re-run"),
        ('{"distbench": {"schema_version": 9}, "benchmarks": []}', "schema version 9; .*upgrade distbench"),
        ("[1, 2]", "is not a distbench run"),
    ],
)
def test_foreign_truncated_and_unknown_version_files_are_refused(tmp_path, text, message):
    path = tmp_path / "0001_x_y.json"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load(path)


@pytest.mark.parametrize("value, shown", [(float("nan"), "nan"), (-0.5, "-0.5"), (0, "0")])
def test_a_run_with_a_step_time_that_is_no_positive_number_is_refused(tmp_path, value, shown):
    """A run file edited by hand (NaN, a negative time): the median over the other steps
    read as if the run were whole, and compare judged it."""
    path = save(tmp_path, cells())
    document = json.loads(path.read_text())
    document["benchmarks"][0]["extra_info"]["distbench"]["repeats"][0]["steps"]["samples"][2] = value
    path.write_text(json.dumps(document))
    with pytest.raises(UserError, match=rf"has a step time of {shown} in cell \S+, which no process records: "
                                        "truncated or corrupted"):
        load(path)


def test_a_run_with_a_test_metric_of_nan_is_refused(tmp_path):
    """A test accuracy of NaN (hand-edited; a worker stores none as null, read as lost):
    check --baseline judged it PASS, exit 0, where a missing one fails (a user's trial)."""
    path = save(tmp_path, cells())
    document = json.loads(path.read_text())
    document["benchmarks"][0]["extra_info"]["distbench"]["repeats"][0]["accuracy"]["test"]["accuracy"] = float("nan")
    path.write_text(json.dumps(document))
    with pytest.raises(UserError, match=r"has a test accuracy of nan in cell \S+, which no process records"):
        load(path)


def test_a_file_that_is_not_a_stored_run_is_not_advised_deleted(tmp_path):
    """Given by its path, a user's own file that does not parse is named, not called a
    corrupted run to delete."""
    path = tmp_path / "settings.json"
    path.write_text("{oops")
    with pytest.raises(UserError) as refused:
        load(path)
    assert str(refused.value).endswith("not a stored run (`distbench list` lists them).")
    assert "Delete" not in str(refused.value)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(UserError, match="is not text .*not a stored run"):
        load(path)


def test_references_resolve(tmp_path):
    first, second = save(tmp_path, cells()), save(tmp_path, cells())
    storage = Storage(tmp_path)
    mid = lambda: MACHINE   # noqa: E731
    assert storage.resolve("latest", mid) == second
    assert storage.resolve("latest~1", mid) == first
    assert storage.resolve("1", mid) == first
    assert storage.resolve(str(second), mid) == second


@pytest.mark.parametrize(
    "ref, message",
    [
        ("7", r"Run number 7 does not exist in .*Stored: 0001-0002"),
        ("latest~5", r"Run 'latest~5' does not exist: only 2 stored run"),
        ("yesterday", r"Bad run reference 'yesterday'"),
        ("/nowhere/run.json", r"No stored run at '/nowhere/run.json'"),
        ("/run.json", r"No stored run at '/run.json': the file does not exist"),   # read as a machine folder ''
    ],
)
def test_bad_references_are_clear(tmp_path, ref, message):
    save(tmp_path, cells())
    save(tmp_path, cells())
    with pytest.raises(UserError, match=message):
        Storage(tmp_path).resolve(ref, lambda: MACHINE)


def test_no_runs_at_all(tmp_path):
    with pytest.raises(UserError, match="No stored runs in .*Save one with"):
        Storage(tmp_path).resolve("latest", lambda: MACHINE)


def test_unwritable_results_folder_is_a_user_error_and_keeps_what_exists(tmp_path):
    existing = save(tmp_path, cells())
    before = existing.read_bytes()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the results folder should be")
    with pytest.raises(UserError, match="Cannot write results to .*The run is kept in ") as raised:
        save(blocker, cells())
    assert existing.read_bytes() == before
    # The run measured is not lost: it is in the temporary folder, whole, and loads by its path.
    kept = str(raised.value).split("The run is kept in ", 1)[1].split(":", 1)[0]
    try:
        assert set(load(kept).results) == set(load(existing).results)
    finally:
        os.unlink(kept)


def test_stored_files_get_ordinary_permissions(tmp_path):
    import os

    path = save(tmp_path, cells())
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_pytest_benchmark_reads_our_files(tmp_path, capsys, monkeypatch):
    from pytest_benchmark.cli import main as pytest_benchmark_main

    skipped = {"x-tpu-fit": [{"cell": "x-tpu-fit", "status": "skipped", "reason": "no TPU", "config": {}}]}
    save(tmp_path, {**cells(10.0), **skipped})
    save(tmp_path, {**cells(12.0, seed=1), **skipped})
    monkeypatch.setattr("sys.argv", ["pytest-benchmark", "--storage", f"file://{tmp_path}", "compare", "0001", "0002"])
    try:
        pytest_benchmark_main()
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    assert "test_cell[reuters_cnn-default-fit] (0001_abc1234)" in out
    assert "test_cell[reuters_cnn-default-fit] (0002_abc1234)" in out
    assert list(load(Storage(tmp_path).runs()[0]).cells()) == ["reuters_cnn-default-fit", "x-tpu-fit"]


def test_old_lockstep_records_read_as_workers_record_them_now(tmp_path):
    """Run e3e5cf/0004 (``ab``, one lockstep cell) was stored before lockstep workers stopped
    judging their disturbance: every process read DISTURBED by its own partner. Read now, the
    lockstep cell is not judged; the same file with its pairs run one after the other is."""
    stored = next(Path(__file__).parents[2].glob("results/x86_64-2cpu-nogpu-e3e5cf/0004_*.json"))
    data = json.loads(stored.read_text())
    cell = "reuters_cnn-default-custom"
    assert data["distbench"]["interleaved"]["cells"][cell]["lockstep"] is True
    repeats = data["benchmarks"][0]["extra_info"]["distbench"]["repeats"]
    assert all(r["disturbance"]["disturbed"] and "lockstep" not in r["disturbance"] for r in repeats)

    run = load(stored)
    for side in ("A", "B"):
        assert run.results[f"{cell}@{side}"].disturbed == []
        assert all(r["disturbance"]["lockstep"].startswith("not judged") for r in run.cells()[f"{cell}@{side}"])

    data["distbench"]["interleaved"]["cells"][cell]["lockstep"] = False
    apart = tmp_path / MACHINE / stored.name
    apart.parent.mkdir()
    apart.write_text(json.dumps(data))
    assert load(apart).results[f"{cell}@A"].disturbed


def test_a_gpu_driver_without_device_nodes_yet_still_asks_tensorflow(tmp_path, monkeypatch):
    """The quick machine id (no TensorFlow) is only for a host where no GPU can be listed:
    an NVIDIA driver whose device nodes CUDA has not made yet (its /proc entry, or its
    library alone) sends the id to TensorFlow's list, which would name the GPU."""
    import ctypes.util
    import sys

    from distbench.storage import machine

    if not sys.platform.startswith("linux"):
        pytest.skip("device nodes are Linux's")
    monkeypatch.setattr(machine, "GPU_NODES", (str(tmp_path / "dev" / "nvidia[0-9]*"),
                                               str(tmp_path / "proc" / "gpus" / "*")))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert machine.no_gpu_possible()
    (tmp_path / "proc" / "gpus").mkdir(parents=True)
    (tmp_path / "proc" / "gpus" / "0000:00:1e.0").mkdir()
    assert not machine.no_gpu_possible()
    (tmp_path / "proc" / "gpus" / "0000:00:1e.0").rmdir()
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libcuda.so.1" if name == "cuda" else None)
    assert not machine.no_gpu_possible()


def test_py_cpuinfo_is_asked_once_per_boot_and_its_current_clock_is_not_kept(tmp_path, monkeypatch):
    """py-cpuinfo takes about 1 s, in a process of its own, and every saved run asked it: its
    answer is kept per boot (a new boot, or the cache off, asks again), without the clock of
    the moment it was asked."""
    import cpuinfo
    from distbench.storage import machine

    asked = []

    def get_cpu_info():
        asked.append(1)
        return {"brand_raw": "Test CPU @ 2.80GHz", "count": 2, "hz_actual": [2793438000, 0],
                "hz_actual_friendly": "2.7934 GHz", "hz_advertised_friendly": "2.8000 GHz"}

    monkeypatch.setattr(cpuinfo, "get_cpu_info", get_cpu_info)
    monkeypatch.setenv("DISTBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(machine, "_boot_id", lambda: "boot-1")

    # A cache of this test's own (restored after it), cleared as a new process would find it.
    monkeypatch.setattr(machine, "_kept_cpu_info", functools.lru_cache(maxsize=1)(machine._kept_cpu_info.__wrapped__))

    def a_new_process():
        machine._kept_cpu_info.cache_clear()
        return machine.benchmark_machine_info()

    first, second = a_new_process(), a_new_process()
    assert len(asked) == 1 and first["cpu"] == second["cpu"]
    assert first["cpu"] == {"brand_raw": "Test CPU @ 2.80GHz", "count": os.cpu_count(),   # online CPUs: read afresh
                            "hz_advertised_friendly": "2.8000 GHz"}
    assert first["node"] and first["python_version"] and machine.cpu_model() == "Test CPU @ 2.80GHz"
    monkeypatch.setattr(machine, "_boot_id", lambda: "boot-2")
    a_new_process()
    assert len(asked) == 2
    monkeypatch.setenv("DISTBENCH_CACHE", "off")
    a_new_process()
    a_new_process()
    assert len(asked) == 4
    # A brand string without a clock: py-cpuinfo's "advertised" clock is the current one, not
    # kept. An answer without a brand (py-cpuinfo's process failed) is not kept either.
    monkeypatch.setenv("DISTBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(machine, "_boot_id", lambda: "boot-3")
    answers = iter([{}, {"brand_raw": "AMD EPYC 7B13", "hz_advertised_friendly": "2.4500 GHz",
                         "hz_actual_friendly": "2.4500 GHz"}])
    monkeypatch.setattr(cpuinfo, "get_cpu_info", lambda: (asked.append(1), next(answers))[1])
    assert a_new_process()["cpu"] == {"count": os.cpu_count()}
    assert a_new_process()["cpu"] == {"brand_raw": "AMD EPYC 7B13", "count": os.cpu_count()} and len(asked) == 6
    assert a_new_process()["cpu"]["brand_raw"] == "AMD EPYC 7B13" and len(asked) == 6   # kept
