"""The devices' measured peak, each cell's share of it, and where a matmul shape sits."""

import pytest
from distbench.render import run_table
from distbench.scenarios import peak
from distbench.session import peak as peak_records
from distbench.storage.results import CellResult

from tests.bench.runs import record, samples


def test_measure_times_a_product_and_a_reduction_on_the_cpu(monkeypatch):
    monkeypatch.setitem(peak.PEAK_SIZE, "CPU", 128)
    monkeypatch.setitem(peak.BANDWIDTH_FLOATS, "CPU", 2**20)
    out = peak.measure()
    cpu = out["peaks"]["/CPU:0"]
    assert out["status"] == "ok" and cpu["shape"] == [128, 128, 128] and len(cpu["samples"]) == peak.REPEATS
    assert cpu["gflops"] == pytest.approx(2 * 128**3 / min(cpu["samples"]) / 1e9)   # the best the device did
    assert cpu["bandwidth_gbs"] > 0 and cpu["datasheet_gflops"] is None
    assert {"others_cpu", "disturbed"} <= set(out["disturbance"])   # what else ran while it was measured


def test_a_peak_measured_under_load_says_so():
    """Other processes halved the peak (116 against 220 GFLOP/s): every share of peak in that
    run doubled (31% to 81% for one cell), and the line naming the peak said nothing."""
    record = {"status": "ok", "peaks": {"/CPU:0": {"shape": [4096] * 3, "gflops": 116.3, "bandwidth_gbs": 20.0}}}
    quiet = run_table.peak_line({**record, "disturbance": {"disturbed": False, "others_cpu": 0.02}})
    assert "DISTURBED" not in quiet and quiet == run_table.peak_line(record)   # older runs recorded none
    busy = run_table.peak_line({**record, "disturbance": {"disturbed": True, "others_cpu": 0.48}})
    assert busy.startswith(quiet) and "DISTURBED: other processes used 48% of the CPU while it was measured" in busy


def test_datasheet_peaks_are_matched_by_device_name():
    assert peak.datasheet_gflops("NVIDIA H100 80GB HBM3") == 51200   # "H100" without SXM in the name
    assert peak.datasheet_gflops("NVIDIA H200") == 66900
    assert peak.datasheet_gflops("Tesla T4") == 8100
    assert peak.datasheet_gflops("Some New GPU") is None


PEAKS = {"cell": "peak", "status": "ok", "peaks": {
    "/CPU:0": {"kind": "CPU", "shape": [4096] * 3, "gflops": 200.0, "bandwidth_gbs": 10.0, "device_name": "",
               "datasheet_gflops": None},
    "/GPU:0": {"kind": "GPU", "shape": [8192] * 3, "gflops": 40000.0, "bandwidth_gbs": 3000.0,
               "device_name": "NVIDIA H100 PCIe", "datasheet_gflops": 51200.0}}}


def _training(cell, devices, median_ms, flops_per_step):
    rec = record(cell, samples(median_ms, spread=0.0))
    rec["strategy"]["devices"] = devices
    rec["compute"] = {"flops_per_step": flops_per_step}
    return rec


def test_each_cell_gets_its_own_device_s_peak_and_shows_its_share():
    cpu = _training("w-default-fit", ["/CPU:0"], 10.0, 2e8)          # 20 GFLOP/s
    gpu = _training("w-mirrored-fit", ["/GPU:0", "/GPU:1"], 1.0, 2e9)  # 2,000 GFLOP/s over two GPUs
    gpu["strategy"]["replicas"] = gpu.setdefault("batch", {})["replicas"] = 2
    run = {"w-default-fit": [cpu], "w-mirrored-fit": [gpu]}
    peak_records.apply(run, PEAKS)
    assert cpu["compute"]["peak"]["device"] == "/CPU:0" and gpu["compute"]["peak"]["device"] == "/GPU:0"
    on_cpu, on_gpu = CellResult.of("w-default-fit", [cpu]), CellResult.of("w-mirrored-fit", [gpu])
    assert on_cpu.achieved_flops == pytest.approx(2e10) and on_cpu.share_of_peak == pytest.approx(0.1)
    assert run_table.compute_cell(on_cpu) == "0.2 GFLOP/step, 20.0 GFLOP/s (10% of 200)"
    # Over both GPUs' peak: one GPU's made two GPUs at 60% each read 120%.
    assert on_gpu.share_of_peak == pytest.approx(0.025) and on_gpu.share_of_datasheet == pytest.approx(2000 / 102400)
    assert run_table.compute_cell(on_gpu) == "2 GFLOP/step, 2000.0 GFLOP/s (2.5% of 2 x 40000), 2.0% of datasheet"


def test_a_cell_s_share_is_over_the_devices_it_used():
    virtual = _training("w-virtual-fit", ["/GPU:0", "/GPU:1"], 1.0, 2e9)   # two logical GPUs of one
    virtual["strategy"].update(virtual_devices=True, replicas=2)
    local = _training("w-multi_worker-custom", ["/GPU:0"], 1.0, 2e9)      # three workers sharing two GPUs
    local["strategy"].update(replicas=3, gpus_per_worker=["0", "1", "0"])
    local["batch"]["replicas"] = 3
    slurm = _training("w-multi_worker-fit", ["/GPU:0"], 1.0, 2e9)         # other machines: not measured here
    slurm["strategy"].update(replicas=8, cluster="slurm")
    slurm["batch"]["replicas"] = 8
    cpu = _training("w-virtual-custom", ["/CPU:0", "/CPU:1"], 10.0, 2e8)  # replicas sharing the one CPU
    cpu["strategy"]["replicas"] = 2
    peak_records.apply({r["cell"]: [r] for r in (virtual, local, slurm, cpu)}, PEAKS)
    assert [r.get("compute", {}).get("peak", {}).get("devices") for r in (virtual, local, slurm, cpu)] == [1, 2, None, 1]
    assert CellResult.of("w-multi_worker-fit", [slurm]).share_of_peak is None


def test_without_a_measured_peak_no_share_is_claimed():
    rec = _training("w-default-fit", ["/CPU:0"], 10.0, 2e8)
    peak_records.apply({"w-default-fit": [rec]}, {"cell": "peak", "status": "error", "reason": "killed"})
    result = CellResult.of("w-default-fit", [rec])
    assert result.share_of_peak is None and run_table.compute_cell(result) == "0.2 GFLOP/step, 20.0 GFLOP/s"
    assert run_table.peak_line({"status": "error", "reason": "killed"}) == "Device peak: not measured (killed)."


def test_a_matmul_shape_is_placed_on_the_roofline():
    from distbench.workloads.matmul import Matmul

    assert Matmul.intensity((10000, 100, 10000)) == pytest.approx(2e10 / (4 * (1e6 + 1e6 + 1e8)))   # 49 FLOP/B
    assert Matmul.intensity((4096, 4096, 4096)) == pytest.approx(4096 / 6)
    rec = record("matmul-default", samples(135.0, spread=0.0))
    rec["matmul"] = {"shape": [10000, 100, 10000], "flops_per_byte": Matmul.intensity((10000, 100, 10000)),
                     "primary_device": "/CPU:0", "devices": {"/CPU:0": {"gflops": 148.0}}}
    peak_records.apply({"matmul-default": [rec]}, PEAKS)
    result = CellResult.of("matmul-default", [rec])
    assert result.share_of_peak == pytest.approx(0.74)
    note = run_table.roofline_note(result)
    assert note.startswith("shape 10000x100x10000: 49 FLOP/byte; roofline: 10.0 GB/s x 49 = 490 GFLOP/s")
    assert note.endswith("compute-bound at this shape")
