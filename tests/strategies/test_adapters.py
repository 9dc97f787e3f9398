import time

import pytest
from distbench import strategies
from distbench.strategies import devices
from distbench.strategies.devices import DeviceSetup, DeviceSetupError
from distbench.strategies.hardware import Hardware

CPU_ONLY = Hardware(cpus=1, gpus=(), tpu_address=None, local_tpu_devices=(), libtpu_installed=False)
TWO_GPUS = Hardware(cpus=1, gpus=("/physical_device:GPU:0", "/physical_device:GPU:1"),
                    tpu_address=None, local_tpu_devices=(), libtpu_installed=False)


def test_unavailable_hardware_is_a_reason_decided_fast():
    started = time.perf_counter()
    one_gpu = strategies.get("one_gpu").availability(CPU_ONLY)
    tpu = strategies.get("tpu").availability(CPU_ONLY)
    assert time.perf_counter() - started < 0.5
    assert not one_gpu.ok and one_gpu.reason == "one_gpu: no GPU found (TensorFlow lists no physical GPU)"
    assert not tpu.ok and tpu.reason == "tpu: no TPU found (TPU_NAME unset, no local TPU)"


def test_tpu_named_by_environment_is_available_without_connecting():
    hw = Hardware(cpus=1, gpus=(), tpu_address="grpc://10.0.0.2:8470", local_tpu_devices=(), libtpu_installed=False)
    assert strategies.get("tpu").availability(hw).ok


def test_tpu_devices_without_libtpu_say_so():
    hw = Hardware(cpus=1, gpus=(), tpu_address=None, local_tpu_devices=("/dev/accel0",), libtpu_installed=False)
    assert "libtpu is not installed" in strategies.get("tpu").availability(hw).reason


def test_this_machine_skips_gpu_and_tpu_with_reasons():
    from distbench.strategies import hardware

    hw = hardware.detect()
    if hw.gpus:
        pytest.skip("this machine has a GPU")
    assert not strategies.get("one_gpu").availability(hw).ok
    assert strategies.get("mirrored").availability(hw).reason.startswith("no GPU found")


@pytest.mark.parametrize(
    "name, hw, setup",
    [
        ("default", CPU_ONLY, DeviceSetup()),
        ("one_gpu", TWO_GPUS, DeviceSetup(memory_growth=True)),
        ("virtual", CPU_ONLY, DeviceSetup(logical_type="CPU", logical_count=2)),
        ("virtual", TWO_GPUS, DeviceSetup(logical_type="GPU", logical_count=2, logical_memory_mb=2048, only_first_gpu=True)),
        ("mirrored", CPU_ONLY, DeviceSetup()),
        ("mirrored", TWO_GPUS, DeviceSetup(memory_growth=True)),
    ],
)
def test_device_setups(name, hw, setup):
    assert strategies.get(name).device_setup(hw) == setup


def test_virtual_strategy_builds_two_replicas_marked_virtual():
    adapter = strategies.get("virtual", devices=2)
    devices.apply(adapter.device_setup(CPU_ONLY))   # matches the session's set-up: a no-op
    strategy = adapter.build(CPU_ONLY)
    info = adapter.describe(strategy, CPU_ONLY)
    assert info["replicas"] == 2
    assert info["virtual_devices"] is True
    assert info["devices"] == ["/CPU:0", "/CPU:1"]
    assert "not real scaling" in info["notes"][0]


def test_mirrored_without_gpus_runs_one_cpu_replica_and_says_so():
    adapter = strategies.get("mirrored")
    info = adapter.describe(adapter.build(CPU_ONLY), CPU_ONLY)
    assert info["replicas"] == 1 and info["devices"] == ["/CPU:0"]
    assert info["notes"] == ["no GPU found: MirroredStrategy runs one replica on the CPU"]


def test_a_second_different_device_setup_is_a_clear_error_not_a_runtime_error():
    with pytest.raises(DeviceSetupError, match="needs a fresh process"):
        devices.apply(DeviceSetup(logical_type="CPU", logical_count=3))
    assert devices.applied() == DeviceSetup(logical_type="CPU", logical_count=2)


def test_repeating_the_same_setup_is_a_no_op():
    devices.apply(DeviceSetup(logical_type="CPU", logical_count=2))
    devices.apply(DeviceSetup())


def test_a_process_builds_each_strategy_once():
    # Two MirroredStrategy instances in one process collide on collective keys
    # (tensorflow/tensorflow#62790): the adapter hands back the one it built.
    first = strategies.get("virtual", devices=2).build(CPU_ONLY)
    assert strategies.get("virtual", devices=2).build(CPU_ONLY) is first
    assert strategies.get("mirrored").build(CPU_ONLY) is not first


def test_a_gpu_tensorflow_cannot_see_gets_the_install_hint():
    import dataclasses

    import distbench.strategies as s

    driver_only = dataclasses.replace(CPU_ONLY, nvidia_smi=True)
    why = s.get("one_gpu").availability(driver_only).reason
    assert why.startswith("one_gpu: no GPU found") and "pip install 'tensorflow[and-cuda]'" in why
    assert "tensorflow[and-cuda]" in s.get("mirrored").availability(driver_only).reason
    assert "and-cuda" not in s.get("one_gpu").availability(CPU_ONLY).reason     # no driver: no hint
    assert TWO_GPUS.gpu_hint == ""


def test_tpu_addresses_and_tpu_vm_devices_are_found_where_they_are():
    from distbench.strategies import hardware

    assert hardware.tpu_address({"COLAB_TPU_ADDR": "10.0.0.2:8470"}) == "grpc://10.0.0.2:8470"
    assert hardware.tpu_address({"COLAB_TPU_ADDR": "grpc://10.0.0.2:8470"}) == "grpc://10.0.0.2:8470"
    assert hardware.tpu_address({"TPU_NAME": "my-tpu", "COLAB_TPU_ADDR": "1.2.3.4:8470"}) == "my-tpu"
    assert hardware.tpu_address({}) is None


def test_tpu_vm_chips_are_accel_or_numbered_vfio_nodes(tmp_path):
    from distbench.strategies import hardware

    (tmp_path / "vfio").mkdir()
    for name in ("vfio/vfio", "vfio/0", "vfio/1", "null"):
        (tmp_path / name).write_text("")
    assert hardware.local_tpu_devices(str(tmp_path)) == (str(tmp_path / "vfio/0"), str(tmp_path / "vfio/1"))
    (tmp_path / "accel0").write_text("")
    assert str(tmp_path / "accel0") in hardware.local_tpu_devices(str(tmp_path))
    (tmp_path / "vfio" / "0").unlink(), (tmp_path / "vfio" / "1").unlink()
    (tmp_path / "accel0").unlink()
    assert hardware.local_tpu_devices(str(tmp_path)) == ()   # a VFIO host without TPUs is not a TPU VM


def test_a_cpu_only_process_hides_its_gpus_before_the_runtime_starts(monkeypatch):
    import tensorflow as tf
    from distbench.strategies import devices

    hidden = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0", "GPU:1"] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda found, kind: hidden.append((found, kind)))
    assert devices.cpu_only_process() == 2 and hidden == [([], "GPU")]

    def too_late(found, kind):
        raise RuntimeError("Visible devices cannot be modified after being initialized")

    monkeypatch.setattr(tf.config, "set_visible_devices", too_late)
    with pytest.raises(devices.DeviceSetupError, match="Cannot hide this process's GPUs"):
        devices.cpu_only_process()


def test_virtual_on_a_gpu_uses_its_memory_option_and_hides_the_other_gpus(monkeypatch):
    import distbench.strategies as s
    import tensorflow as tf
    from distbench.strategies import devices

    setup = s.get("virtual", devices=4, virtual_memory_mb=1024).device_setup(TWO_GPUS)
    assert (setup.logical_type, setup.logical_count, setup.logical_memory_mb, setup.only_first_gpu) == \
        ("GPU", 4, 1024, True)
    calls = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0", "GPU:1"])
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda found, kind: calls.append(("visible", found)))
    monkeypatch.setattr(tf.config, "get_logical_device_configuration", lambda device: None)
    monkeypatch.setattr(tf.config, "set_logical_device_configuration",
                        lambda device, configs: calls.append(("split", device, [c.memory_limit for c in configs])))
    devices._configure(setup)
    assert calls == [("visible", ["GPU:0"]), ("split", "GPU:0", [1024] * 4)]


def test_a_set_up_step_past_its_deadline_times_out_and_others_pass_through():
    import threading

    from distbench.strategies.connect import ConnectTimeout, within

    assert within(5, lambda: 42, "a quick step", "") == 42
    with pytest.raises(KeyError):
        within(5, lambda: {}["missing"], "a failing step", "")
    began = time.monotonic()
    with pytest.raises(ConnectTimeout, match=r"^a blocked step did not finish within 0.5 s \(--connect-deadline\); "
                                             r"it waits for an event$"):
        within(0.5, threading.Event().wait, "a blocked step", "it waits for an event")
    assert time.monotonic() - began < 5


@pytest.mark.slow
def test_a_tpu_that_never_answers_fails_at_the_connect_deadline_not_the_cells(tiny):
    """A real gRPC endpoint that accepts and never speaks, as TPU_NAME: the worker's
    initialise blocks inside TensorFlow, and the cell ends at the 8 s connect deadline
    with a timeout record, not at the cell's 120 s."""
    import socket

    from distbench.launchers import process as launcher

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        address = f"grpc://127.0.0.1:{silent.getsockname()[1]}"
        began = time.monotonic()
        record = launcher.launch(tiny("reuters_cnn", "tpu", "custom", connect_deadline_s=8, deadline_s=120),
                                 env={"TPU_NAME": address})
    assert time.monotonic() - began < 60
    assert record["status"] == "error" and record["error_kind"] == "timeout"
    assert record["reason"] == (f"tpu: connecting to and initialising the TPU ({address}) did not finish within 8 s "
                                "(--connect-deadline); the TPU may be busy with another job, preempted, or "
                                "unreachable from here")


def test_the_device_line_says_what_tensorflow_lists_and_why_not():
    import dataclasses

    assert CPU_ONLY.summary() == "CPU 1; GPU none; TPU none"
    assert TWO_GPUS.summary().startswith("CPU 1; GPU /physical_device:GPU:0, /physical_device:GPU:1; TPU none")
    assert "tensorflow[and-cuda]" in dataclasses.replace(CPU_ONLY, nvidia_smi=True).summary()
    vm = dataclasses.replace(CPU_ONLY, local_tpu_devices=("/dev/vfio/0",))
    assert vm.summary().endswith("TPU local chips /dev/vfio/0 (libtpu not installed)")
    assert dataclasses.replace(CPU_ONLY, tpu_address="grpc://1.2.3.4:8470").summary().endswith(
        "TPU TPU_NAME/COLAB_TPU_ADDR grpc://1.2.3.4:8470")


def test_a_gpu_s_name_and_capability_are_read_for_physical_and_carved_devices(monkeypatch):
    """Two physical GPUs, the first split in two logical ones (``virtual``): /GPU:0 and
    /GPU:1 are the first card, /GPU:2 the second; TensorFlow's answers are faked."""
    import tensorflow as tf
    from distbench.strategies.hardware import gpu_details

    a100, h100 = object(), object()
    details = {a100: {"device_name": "NVIDIA A100-SXM4-40GB", "compute_capability": (8, 0)},
               h100: {"device_name": "NVIDIA H100 80GB HBM3", "compute_capability": (9, 0)}}
    monkeypatch.setattr(tf.config, "get_visible_devices", lambda kind=None: [a100, h100])
    monkeypatch.setattr(tf.config, "get_logical_device_configuration", lambda d: [1, 2] if d is a100 else None)
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda d: details[d])
    assert gpu_details("/GPU:0") == gpu_details("/GPU:1") == {"device_name": "NVIDIA A100-SXM4-40GB",
                                                              "compute_capability": [8, 0]}
    assert gpu_details("/GPU:2") == {"device_name": "NVIDIA H100 80GB HBM3", "compute_capability": [9, 0]}
    assert gpu_details("/GPU:3") == {}


def test_a_connect_deadline_beyond_what_a_thread_can_wait_waits_as_long_as_it_can():
    """``--connect-deadline 1e10`` is finite and accepted; waiting that long raised
    OverflowError (past threading.TIMEOUT_MAX) in the worker, a traceback, not a wait."""
    from distbench.strategies import connect

    assert connect.within(1e10, lambda: "joined", "connecting", "why") == "joined"
