"""The terminal summary: fits 120 columns, every measured cell in it, the rest grouped by reason."""

from distbench.core.config import CellSpec
from distbench.core.records import skipped
from distbench.render import run_table
from distbench.storage.results import results_of

from tests.bench.runs import record, samples

LONG = "No GPU here: TensorFlow lists none (install tensorflow[and-cuda] on a machine with an NVIDIA driver)"


def _run():
    run = {f"reuters_cnn-{s}-{loop}": [record(f"reuters_cnn-{s}-{loop}", samples(9.0 + k), accuracy=0.6)]
           for k, (s, loop) in enumerate([("default", "fit"), ("virtual", "train_on_batch"), ("mirrored", "custom")])}
    for strategy in ("one_gpu", "tpu"):
        for loop in ("fit", "custom", "train_on_batch"):
            spec = CellSpec("multibranch", strategy, loop)
            run[spec.id] = [skipped(spec, LONG if strategy == "one_gpu" else "No TPU: TPU_NAME is not set")]
    return results_of(run)


def test_the_summary_fits_120_columns_and_groups_skips():
    results = _run()
    text = run_table.run_summary(results, "table", full=False)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    for cell in ("reuters_cnn-default-fit", "reuters_cnn-virtual-train_on_batch", "reuters_cnn-mirrored-custom"):
        assert any(line.startswith(cell) for line in lines), cell
    assert sum("skipped (3): No GPU here" in line for line in lines) == 1    # one line per reason
    assert sum("skipped (3): No TPU" in line for line in lines) == 1


def test_the_full_table_has_every_column():
    results = _run()
    full = run_table.run_summary(results, "table", full=True)
    assert "FLOPs: per step, achieved (share of peak)" in full and "peak RSS MiB" in full
    assert max(len(line) for line in full.splitlines()) > 120     # why it is not the default
