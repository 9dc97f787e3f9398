import pytest
from distbench.analysis import scaling
from distbench.core.config import CellSpec
from distbench.core.errors import UserError
from distbench.render.run_table import scaling_rows
from distbench.scenarios.tasks import run_cell
from distbench.storage.results import CellResult

from tests.bench.runs import record as make_record


def rec(strategy, loop, replicas, throughput, workload="reuters_cnn", kind="strong", **strategy_info):
    """A cell whose processes all step at 32 / ``throughput`` s (global batch 32)."""
    r = make_record(f"{workload}-{strategy}-{loop}", [32 / throughput] * 5, replicas=replicas)
    r["config"]["scaling"] = kind
    r["strategy"] = {"strategy": strategy, "replicas": replicas, **strategy_info}
    return CellResult.of(r["cell"], [r, r])


def test_efficiency_by_hand():
    records = [
        rec("default", "fit", 1, 2000.0),
        rec("mirrored", "fit", 4, 6000.0),                        # 6000 / (4 x 2000) = 0.75
        rec("virtual", "fit", 2, 1000.0, virtual_devices=True),   # 1000 / (2 x 2000) = 0.25, shared
        rec("mirrored", "custom", 2, 3000.0),                     # no default custom: no row
        rec("mirrored", "fit", 1, 1900.0),                        # one replica: no row
    ]
    rows = {r.strategy: r for r in scaling.efficiencies(records)}
    assert set(rows) == {"mirrored", "virtual"}
    assert rows["mirrored"].efficiency == pytest.approx(0.75) and not rows["mirrored"].shared_hardware
    assert rows["virtual"].efficiency == pytest.approx(0.25) and rows["virtual"].shared_hardware


def test_strong_and_weak_are_never_mixed():
    records = [rec("default", "fit", 1, 2000.0), rec("mirrored", "fit", 2, 7000.0, kind="weak"),
               rec("default", "fit", 1, 3000.0, kind="weak")]
    (row,) = scaling.efficiencies(records)
    assert row.kind == "weak" and row.reference == 3000.0 and row.efficiency == pytest.approx(7000 / 6000)


def test_local_workers_are_marked_as_shared_hardware():
    records = [rec("default", "custom", 1, 2000.0),
               rec("multi_worker", "custom", 2, 1000.0, notes=["2 worker processes (127.0.0.1:1, 127.0.0.1:2)"])]
    (row,) = scaling.efficiencies(records)
    assert row.shared_hardware
    assert "not real scaling" in scaling_rows([row])[0][-1]


def test_each_side_of_an_interleaved_run_is_scaled_against_its_own_default_cell():
    """report on an ab run: side A's virtual cell had been divided by side B's default cell
    (the later of the two under one key), and the rows did not say which side they were."""
    def side(result, name):
        return CellResult.of(f"{result.id}@{name}", [{**r, "cell": f"{result.id}@{name}"} for r in result.repeats])

    records = [side(rec("default", "fit", 1, 2000.0), "A"), side(rec("virtual", "fit", 2, 1000.0), "A"),
               side(rec("default", "fit", 1, 4000.0), "B"), side(rec("virtual", "fit", 2, 1000.0), "B")]
    rows = {r.side: r for r in scaling.efficiencies(records)}
    assert rows["A"].reference == 2000.0 and rows["A"].efficiency == pytest.approx(0.25)
    assert rows["B"].reference == 4000.0 and rows["B"].efficiency == pytest.approx(0.125)
    assert [row[2] for row in scaling_rows(list(rows.values()))] == ["virtual@A", "virtual@B"]


def test_weak_scaling_keeps_the_per_replica_batch(tiny):
    record = run_cell(tiny("reuters_cnn", "virtual", "custom", scaling="weak"))
    assert record["batch"] == {"global": 64, "per_replica": 32, "replicas": 2, "scaling": "weak"}
    assert record["examples_per_second"] == pytest.approx(64 / record["step_time"]["median"])
    assert record["cell"] == "reuters_cnn-virtual-custom-weak"


def test_unknown_scaling_is_refused():
    with pytest.raises(UserError, match="Unknown scaling 'linear'. Known: strong, weak."):
        CellSpec("reuters_cnn", "default", "fit", scaling="linear").validate()
