"""Cells in fresh worker processes: records come back, deadlines kill, crashes are reported."""

import os
import time

import pytest

from distbench.launchers import process as launcher
from tests.processes import gone

pytestmark = pytest.mark.slow


def test_a_cell_runs_in_its_own_process_with_its_own_device_setup(tiny):
    # virtual with 3 devices cannot run in this test process (it has 2 logical CPUs).
    record = launcher.launch(tiny("reuters_cnn", "virtual", "custom", devices=3, global_batch=33))
    assert record["status"] == "ok", record.get("reason")
    assert record["strategy"]["replicas"] == 3
    assert record["worker_pid"] != os.getpid()


def test_user_errors_in_the_worker_come_back_as_one_line(tiny):
    record = launcher.launch(tiny("reuters_cnn", "virtual", "fit", devices=2, data="/no/such/folder"))
    assert record["status"] == "error" and record["error_kind"] == "user_error"
    assert "Cannot read data folder '/no/such/folder'" in record["reason"]


def test_a_worker_past_its_deadline_is_killed_with_its_group(tiny):
    spec = tiny("multibranch", "default", "fit", epochs=50, steps_per_epoch=1000, deadline_s=4.0)
    started = time.monotonic()
    record = launcher.launch(spec)
    assert time.monotonic() - started < 15
    assert record["status"] == "error" and record["error_kind"] == "timeout"
    assert record["reason"].startswith("timed out after 4 s")
    pid = int(record["reason"].split("worker pid ")[1].split()[0])
    assert gone(pid)


def test_a_worker_that_dies_is_reported_with_its_signal(tiny, tmp_path):
    # sitecustomize runs at interpreter start: the worker dies before writing a record.
    (tmp_path / "sitecustomize.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    record = launcher.launch(tiny(), env={"PYTHONPATH": str(tmp_path)})
    assert record["status"] == "error" and record["error_kind"] == "crash"
    assert "was killed by SIGKILL without writing a record" in record["reason"]
