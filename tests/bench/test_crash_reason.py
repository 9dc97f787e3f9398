"""A worker that dies without a record is reported with the cause its output names: the
last fatal line TensorFlow wrote before it aborted, not only the signal."""

import os
import subprocess
import sys
import textwrap

import pytest
from distbench.launchers import process
from distbench.storage.files import Storage, load

# The end of the output of a worker run with --inter-op-threads 99999 on this machine: it
# hung 5.5 minutes creating threads, then TensorFlow aborted it (SIGABRT).
ABORTED = (
    "F0000 00:00:1796441016.132920    7909 env.cc:84] Check failed: ret == 0 (11 vs. 0) Thread tf_Compute "
    "creation via pthread_create() failed.\n*** Check failure stack trace: ***\n"
    "    @     0x7fbcf4d1d314  absl::lts_20250814::log_internal::LogMessage::SendToLog()\n"
    "    @     0x7fbcf4994e22  tsl::(anonymous namespace)::PThread::PThread()\n"
    "    @     0x7fbce84fe066  TFE_NewContext\n"
)
SAID = ("F0000 00:00:1796441016.132920 7909 env.cc:84] Check failed: ret == 0 (11 vs. 0) Thread tf_Compute creation "
        "via pthread_create() failed.")


@pytest.mark.parametrize("output, line", [
    ("I0000 starting\n" + ABORTED, SAID),
    # TensorFlow before 2.16 (its own logger): the severity after the time stamp.
    ("2023-05-01 10:00:00.000000: F tensorflow/core/kernels/conv_ops.cc:1068] Non-OK-status: status\n@ 0x1 x\n",
     "2023-05-01 10:00:00.000000: F tensorflow/core/kernels/conv_ops.cc:1068] Non-OK-status: status"),
    ("loading\nKilled\n", None),   # nothing fatal said: the reason stays the signal alone
    ("W0000 00:00:1.0 1 x.cc:1] a warning, not fatal\n", None),
])
def test_the_last_fatal_line_of_a_worker_s_output_is_found(tmp_path, output, line):
    log = tmp_path / "worker.log"
    log.write_text(output)
    assert process.fatal_line(str(log)) == line
    said = process.with_fatal_line("worker pid 7 was killed by SIGABRT without writing a record", str(log))
    assert said == ("worker pid 7 was killed by SIGABRT without writing a record"
                    + (f"; its last fatal line: {line}" if line else ""))


def test_a_fatal_line_is_cut_and_found_past_a_long_stack_trace(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text("F0000 00:00:1.0 1 a.cc:1] first\n" + "F0000 00:00:2.0 1 b.cc:2] Check failed: " + "x" * 5000
                   + "\n" + "    @ 0x1 frame\n" * 200)
    line = process.fatal_line(str(log))
    assert len(line) == process.FATAL_CHARS and line.startswith("F0000 00:00:2.0 1 b.cc:2] Check failed: xxx")
    assert line.endswith("...")


# A user's workload whose model cannot be built: it says why as TensorFlow's C++ does (a
# fatal line on the process's standard error) and aborts the process as absl does.
ABORTS = textwrap.dedent('''
    import os

    import numpy as np

    from distbench import Workload


    class Aborts(Workload):
        name = "aborts"

        def build_model(self):
            os.write(2, b"F0000 00:00:1796441016.132920    4242 fake.cc:7] Check failed: x Planted for the test\\n"
                        b"*** Check failure stack trace: ***\\n    @     0x7f00  absl::LogMessage::Flush()\\n")
            os.abort()

        def data(self, source, seed):
            x = np.zeros((64, 4), np.float32)
            return (x, np.zeros(64, np.int32)), (x, np.zeros(64, np.int32))

        def loss(self):
            return "sparse_categorical_crossentropy"
''')


@pytest.mark.slow
def test_a_worker_that_tensorflow_aborts_is_reported_with_its_fatal_line(tmp_path):
    """The real command, the real launcher: the progress line and the stored record's reason
    name the fatal line, not only SIGABRT."""
    (tmp_path / "aborts.py").write_text(ABORTS)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DISTBENCH_SPAWN")}
    result = subprocess.run(
        [sys.executable, "-m", "distbench", "run", "--workload", "aborts.py:Aborts", "--strategy", "default",
         "--loop", "custom", "--no-peak", "--guard-seeds", "0", "--timing-cost-pairs", "0", "--results", "results"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"})
    fatal = "F0000 00:00:1796441016.132920 4242 fake.cc:7] Check failed: x Planted for the test"
    said = f"was killed by SIGABRT without writing a record; its last fatal line: {fatal}"
    progress = " ".join(next(line for line in result.stdout.split("\n\n") if line.startswith("[1/1] ")).split())
    assert progress.startswith("[1/1] aborts-default-custom: error: worker pid ") and said in progress, result.stdout
    (saved,) = Storage(tmp_path / "results").runs()
    (record,) = load(saved).cells()["aborts-default-custom"]
    assert record["error_kind"] == "crash" and record["reason"].endswith(said)
