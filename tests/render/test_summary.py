"""The terminal summary: fits 120 columns, every measured cell in it, the rest grouped by reason."""

from distbench.core.config import CellSpec
from distbench.core.records import skipped
from distbench.render import guard_text, run_table, summary, units
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
    heading = lines.index("reuters_cnn (test: accuracy):")   # then each cell's id without the workload
    for k, cell in enumerate(("default-fit", "virtual-train_on_batch", "mirrored-custom")):
        assert lines[heading + 1 + k].startswith(cell + " "), cell
    assert sum("skipped (3): No GPU here" in line for line in lines) == 1    # one line per reason
    assert sum("skipped (3): No TPU" in line for line in lines) == 1


def test_the_main_command_s_longest_ids_and_a_long_user_workload_fit():
    """The ids of the main command's cross-process cells (48 characters) fit unwrapped under
    their workload's line; a user's long workload name wraps at dashes, still within 120."""
    run = {}
    for workload in ("reuters_cnn", "my_sentiment_transformer_with_a_long_name_v2"):
        for k, (strategy, loop) in enumerate([("default", "fit"), ("multi_worker", "train_on_batch"),
                                              ("parameter_server", "custom")]):
            rec = record(f"{workload}-{strategy}-{loop}", samples(9.0 + 50 * k), accuracy=0.4)
            rec["config"]["keras"] = "tf_keras"
            rec["cell"] = CellSpec(workload, strategy, loop, keras="tf_keras").id
            run[rec["cell"]] = [rec]
    long = "reuters_cnn-a_strategy_plugin_of_the_user_s_own_with_a_name_far_too_long_for_any_column-custom"
    run[long] = [record(long, samples(12.0), accuracy=0.4)]
    text = run_table.run_summary(results_of(run), "table", full=False)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    assert "reuters_cnn (test: accuracy):" in lines
    assert any(line.startswith("multi_worker-train_on_batch-tf_keras ") for line in lines)   # whole
    heading = lines.index("my_sentiment_transformer_with_a_long_name_v2 (test: accuracy):")
    assert lines[heading + 1].startswith("default-fit-tf_keras ")
    # No dash within the room: cut at the room; the rest continues on the next line.
    first = next(k for k, line in enumerate(lines) if line.startswith("a_strategy_plugin_of"))
    assert "ex/s" in lines[first] and lines[first + 1].rstrip() == "name_far_too_long_for_any_column-custom"


def test_a_long_workload_name_wraps_its_heading_not_the_rows():
    name = "a_workload_" + "with_a_very_long_name_" * 5
    run = {f"{name}-default-fit": [record(f"{name}-default-fit", samples(9.0))]}
    lines = run_table.run_summary(results_of(run), "table", full=False).splitlines()
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    assert any(line.startswith("default-fit ") and "ex/s" in line for line in lines)   # the row, whole


def test_short_milliseconds_round_before_choosing_decimals():
    assert [units.ms_short(v / 1e3) for v in (5.954, 99.996, 121.44, 999.96, 1234.4)] == [
        "5.95", "100.0", "121.4", "1000", "1234"]
    assert summary.split_id("multi_worker-train_on_batch-tf_keras", 20) == ["multi_worker-", "train_on_batch-",
                                                                            "tf_keras"]
    assert summary.split_id("abcdefghij", 4) == ["abcd", "efgh", "ij"]


def test_the_full_table_has_every_column():
    results = _run()
    full = run_table.run_summary(results, "table", full=True)
    assert "FLOPs: per step, achieved (share of peak)" in full and "peak RSS MiB" in full
    assert max(len(line) for line in full.splitlines()) > 120     # why it is not the default


def test_a_cell_with_a_crashed_process_says_so_in_its_row_and_below():
    """Measured on 2 of its 3 processes: not an unmarked row."""
    from distbench.core.records import failed

    cell = "reuters_cnn-default-custom"
    crash = failed(CellSpec("reuters_cnn", "default", "custom"), "worker pid 7 exited with code 9 without writing a "
                   "record", error_kind="crash")
    run = {cell: [record(cell, samples(9.0)), crash, record(cell, samples(9.2, seed=1))]}
    lines = run_table.run_summary(results_of(run), "table", full=False).splitlines()
    row = next(line for line in lines if line.startswith("default-custom "))
    assert row.split()[1:3] == ["2", "of"] and row.split()[3] == "3"
    below = " ".join(line.strip() for line in lines[lines.index(row) + 1:])
    assert below == f"PARTLY FAILED (1): 1 of 3 processes: worker pid 7 exited with code 9 without writing a record: {cell}"
    assert lines[-1] == f"    {cell}"     # the id whole on its line, not cut at a dash


def test_a_cell_whose_every_process_failed_says_how_many():
    """``ERROR (1)`` counts cells: a cell run twice that timed out twice said (1) and named
    one pid, as if one process had failed."""
    from distbench.core.records import failed

    spec = CellSpec("digits", "default", "fit")
    run = {spec.id: [failed(spec, f"timed out after 1 s; worker pid {pid} and its process group killed with SIGKILL",
                            error_kind="timeout") for pid in (14960, 14971)]}
    lines = run_table.run_summary(results_of(run), "table", full=False).splitlines()
    below = " ".join(line.strip() for line in lines[lines.index("No cell was measured.") + 1:])
    assert below == ("ERROR (1): all 2 processes, the first: timed out after 1 s; worker pid 14960 and its process "
                     f"group killed with SIGKILL: {spec.id}")
    one = {spec.id: run[spec.id][:1]}
    assert run_table.run_summary(results_of(one), "table", full=False).splitlines()[-1].startswith(
        "ERROR (1): timed out after 1 s; worker pid 14960")


def test_a_collective_s_long_error_is_whole_below_the_table_and_in_the_progress_line():
    """TensorFlow's one-line errors from a cluster run to about 370 characters: they were cut
    at 300 with `...`. They are now whole, on lines within 120 columns."""
    from distbench.core.records import failed

    spec = CellSpec("reuters_cnn", "multi_worker", "custom")
    reason = ("worker 1 (pid 32164) failed: UnavailableError: Collective ops is aborted by: failed to connect to all "
              "addresses; last error: UNKNOWN: ipv4:127.0.0.1:23493: Failed to connect to remote host: Connection "
              "refused Additional GRPC error information from remote target /job:worker/replica:0/task:1 while "
              "calling /tensorflow.CollectiveService/GetStepSequence: The error could be from a previous operation.")
    crash = failed(spec, reason)
    lines = run_table.run_summary(results_of({spec.id: [crash]}), "table", full=False).splitlines()
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    assert " ".join(line.strip() for line in lines) == f"No cell was measured. ERROR (1): {reason}: {spec.id}"
    progress = summary.wrap(run_table.progress_line(1, 1, spec, crash, 3.0)).splitlines()
    assert max(map(len, progress)) <= 120 and reason in " ".join(p.strip() for p in progress)


def _guarded(cell: str, value: float, values: list[float], status: str = "ok", metric: str = "accuracy"):
    rec = record(cell, samples(9.0), accuracy=value)
    mean = sum(values) / len(values)
    rec["accuracy"].update(guard_metric=metric)
    rec["accuracy"]["test"][metric] = value
    rec["accuracy_guard"] = {"status": status, "metric": metric, "value": value, "worse": status == "low",
                             "reference": {"mean": mean, "sd": 0.1, "values": values, "low": mean - 0.38,
                                           "high": mean + 0.38, "half_width": 0.38, "direction": "higher"}}
    return rec


def test_the_guard_s_band_reads_as_the_metric_can_and_the_full_table_names_its_metric():
    """A band of mean ± 0.38 around an accuracy of 0.87 was printed 0.487-1.253; the full
    table's `test acc` showed accuracy where the summary showed AUC."""
    cell = "cancer-default-fit"
    rec = _guarded(cell, 0.654, [0.80, 0.85, 0.96], metric="auc")
    rec["accuracy"]["test"]["accuracy"] = 0.531
    result = results_of({cell: [rec]})[cell]
    assert guard_text.guard_cell(result.guard) == "ok: auc 0.654 in 0.490-1.000"
    assert "accepted 0.490-1.000, the band ± 0.380" in guard_text.guard_message(result.guard)
    row = dict(zip(run_table.HEADERS, run_table.row(result)))
    assert row["test metric"] == "auc 0.654"


def test_the_guard_says_why_it_judged_nothing_or_how_many_it_judged():
    cell = "sentiment-default-custom"
    off = record(cell, samples(9.0))
    off["accuracy_guard"] = {"status": "unguarded", "value": 0.5, "reference": None,
                             "why": "no reference cell (default fit) with the same data and length in this run"}
    assert guard_text.guard_outcome(results_of({cell: [off]})) == (
        "The accuracy guard judged no cell: no reference cell (default fit) with the same data and length in this run.")
    judged = results_of({cell: [_guarded(cell, 0.9, [0.88, 0.9, 0.92]), ],
                         "sentiment-default-fit": [_guarded("sentiment-default-fit", 0.9, [0.5, 0.9, 0.99],
                                                            "underpowered")]})
    assert guard_text.guard_outcome(judged) == ("No cell is outside its reference's band on its bad side (2 judged, "
                                               "1 of them with too little power to flag a drop worth catching).")
    assert guard_text.guard_metrics(judged) == "sentiment: accuracy"


def _interrupted_run(tmp_path, plan):
    """A stored run of three cells of two repeats, stopped after 3 processes: one cell whole,
    one short, one never started (``plan``: stored or not, as before plans were)."""
    import datetime as dt
    import json

    from distbench.core.records import missing
    from distbench.storage.files import Storage, load, run_document

    from tests.bench.runs import INFO, MACHINE

    cells = {c: [record(c, samples(10.0, seed=k)) for k in range(n)]
             for c, n in (("reuters_cnn-default-fit", 2), ("reuters_cnn-default-custom", 1))}
    cells["reuters_cnn-virtual-fit"] = [missing(CellSpec("reuters_cnn", "virtual", "fit"), "never reached")]
    document = run_document(cells, INFO, {"id": "abc12345"}, dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc),
                            interrupted=True, plan={"repeats": {c: 2 for c in cells}} if plan else None)
    return load(Storage(tmp_path).save(json.loads(json.dumps(document)), MACHINE))


def test_an_interrupted_run_s_line_counts_processes_and_names_the_short_cells(tmp_path):
    run = _interrupted_run(tmp_path, plan=True)
    assert run_table.interrupted_line(run.results) == (
        "INTERRUPTED: 3 of 6 planned processes ran before the run was stopped; reuters_cnn-default-custom has 1 of 2 "
        "repeats; reuters_cnn-virtual-fit did not run.")
    rows = summary.render_summary(run.results).splitlines()
    assert next(line for line in rows if line.startswith("default-custom ")).split()[1:3] == ["1", "of"]
    assert next(line for line in rows if line.startswith("default-fit ")).split()[1] == "2"


def test_an_interrupted_run_stored_before_plans_were_still_loads_and_says_what_it_cannot_know(tmp_path):
    run = _interrupted_run(tmp_path, plan=False)
    assert run.planned_repeats == {} and run.results["reuters_cnn-default-custom"].status == "ok"
    assert run_table.interrupted_line(run.results) == (
        "INTERRUPTED: 2 of 3 planned cells started before the run was stopped; reuters_cnn-virtual-fit did not run; "
        "this run did not store its planned repeats, so a started cell may be short of them.")


def test_an_upper_bound_above_the_threshold_is_a_maybe_not_a_finding():
    """fit's input wait is the pipeline timed alone, an upper bound: 26% of it above the 25%
    threshold read BOUND, where the same model's custom cell measured 20%."""
    def cell(share, at_most):
        rec = record("wine-default-fit", samples(10.0))
        rec["input"] = {"wait_share": share, "at_most": at_most, "threshold": 0.25, "input_bound": share > 0.25,
                        "method": "m"}
        return results_of({"wine-default-fit": [rec]})["wine-default-fit"]

    assert summary.input_cell(cell(0.26, True)) == "<=26% BOUND?"
    assert summary.input_cell(cell(0.26, False)) == "26% BOUND"
    assert summary.input_cell(cell(0.12, True)) == "<=12%"


def test_the_replicates_line_names_where_every_column_is():
    """In a terminal, `distbench report` or --full-table; inside the report, its own page
    (report.md had sent its reader to `distbench report`)."""
    seed = record("wine-default-fit-init1", samples(10.0))
    seed["config"]["init_seed"] = 1
    results = results_of({"wine-default-fit": [record("wine-default-fit", samples(10.0))],
                          "wine-default-fit-init1": [seed]})
    assert "seeds; `distbench report` or --full-table shows every column)" in summary.render_summary(results)
    assert "seeds; the page shows every column)" in summary.render_summary(results, "the page")


def test_a_run_of_its_own_training_seed_is_measured_not_a_guard_s_extra_seed():
    """`run --init-seed 5` (or an ab side's seed): no plain cell beside it, so its cells are the
    run's own; the summary said "No cell was measured. (1 more processes: the accuracy guard's
    reference seeds ...)" for a run that measured one (a user's trial)."""
    seed = record("wine-default-fit-init5", samples(10.0))
    seed["config"]["init_seed"] = 5
    text = summary.render_summary(results_of({"wine-default-fit-init5": [seed]}))
    assert "No cell was measured" not in text and "default-fit-init5" in text and "more processes" not in text
