"""What accelerators this machine has, found without initialising TensorFlow's runtime.

Listing *physical* devices is allowed before memory growth or logical devices are set,
so the answers here are safe to ask for in any process, at any time, and are cached.
TPUs are never contacted here: a remote TPU address is only noted (connecting to one
in-process without a deadline was seen to hang for over 45 s); the worker process, which
runs under the launcher's deadline, does the connecting.

The parent of a run keeps TensorFlow out of its own process (its import takes 4-7 s
here): a worker lists the devices and TensorFlow's build for it, and the parent
:func:`adopt` s what the worker found, so that :func:`detect` and :func:`tensorflow_facts`
answer from that without importing TensorFlow (:func:`distbench.launchers.process.machine`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class Hardware:
    """Physical devices and TPU hints of this machine."""

    cpus: int
    gpus: tuple[str, ...]           # TensorFlow names, e.g. "/physical_device:GPU:0"
    tpu_address: str | None         # TPU_NAME or COLAB_TPU_ADDR, when set
    local_tpu_devices: tuple[str, ...]
    libtpu_installed: bool
    nvidia_smi: bool = False        # an NVIDIA driver is installed (whatever TensorFlow lists)

    def summary(self) -> str:
        """The devices in one line, as TensorFlow lists them (``bench list``)."""
        tpus = []
        if self.tpu_address:
            tpus.append(f"TPU_NAME/COLAB_TPU_ADDR {self.tpu_address}")
        if self.local_tpu_devices:
            tpus.append(f"local chips {', '.join(self.local_tpu_devices)}"
                        + ("" if self.libtpu_installed else " (libtpu not installed)"))
        gpus = ", ".join(self.gpus) or "none" + self.gpu_hint
        return f"CPU {self.cpus}; GPU {gpus}; TPU {', '.join(tpus) or 'none'}"

    @property
    def gpu_hint(self) -> str:
        """Why TensorFlow may list no GPU on a machine that has one ("" when it lists some)."""
        if self.gpus or not self.nvidia_smi:
            return ""
        return ("; nvidia-smi finds an NVIDIA GPU, but this TensorFlow lists none: the plain `tensorflow` wheel "
                "has no CUDA libraries, install `pip install 'tensorflow[and-cuda]'`")


def visible_gpu_ids(visible: str | None, gpus: int) -> list[str]:
    """The ids a share of this process's ``gpus`` GPUs is named by in a child's
    ``CUDA_VISIBLE_DEVICES``: those of its own ``visible`` list (``2,3``: not the machine's
    GPUs 0 and 1, which may be another job's), else 0 .. gpus-1."""
    return [d.strip() for d in (visible or "").split(",") if d.strip()][:gpus] or [str(g) for g in range(gpus)]


def tpu_address(environ=None) -> str | None:
    """The TPU to connect to: TPU_NAME as given, or COLAB_TPU_ADDR (host:port) as the
    ``grpc://`` address the cluster resolver needs."""
    environ = os.environ if environ is None else environ
    if environ.get("TPU_NAME"):
        return environ["TPU_NAME"]
    colab = environ.get("COLAB_TPU_ADDR")
    if colab:
        return colab if "://" in colab else f"grpc://{colab}"
    return None


def local_tpu_devices(dev: str = "/dev") -> tuple[str, ...]:
    """A TPU VM's chips: /dev/accel* (v2-v4) or /dev/vfio/<n> (v5e, v5p, v6e; not the
    /dev/vfio/vfio control node that any VFIO host has)."""
    found = glob.glob(os.path.join(dev, "accel*"))
    found += [p for p in glob.glob(os.path.join(dev, "vfio", "*")) if os.path.basename(p).isdigit()]
    return tuple(sorted(found))


def gpu_details(device: str) -> dict:
    """The name and compute capability of the physical GPU behind ``device`` (``/GPU:1``),
    also when it is a logical GPU carved from one (``virtual``); {} when there is none.

    Logical GPUs are numbered in the order of the visible physical GPUs, each split into
    its configured number of logical devices (one when not split).
    """
    import tensorflow as tf

    index = int(device.rsplit(":", 1)[1])
    for physical in tf.config.get_visible_devices("GPU"):
        carved = len(tf.config.get_logical_device_configuration(physical) or [None])
        if index < carved:
            details = tf.config.experimental.get_device_details(physical)
            capability = details.get("compute_capability")
            return {"device_name": details.get("device_name") or physical.name,
                    "compute_capability": list(capability) if capability else None}
        index -= carved
    return {}


@contextlib.contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """TensorFlow's C++ start-up lines (oneDNN, CUDA probing, absl) written to file
    descriptor 2 while inside, kept out of the user's terminal; shown if it fails.

    Python-level logging is untouched; a worker's own output goes to its log file.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    failed = False
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", "replace"))


_found: dict[str, object] = {}   # "hardware": Hardware, "tensorflow": tensorflow_facts()


def detect() -> Hardware:
    """Lists physical devices (cached; never initialises the TensorFlow runtime)."""
    if "hardware" not in _found:
        _found["hardware"] = _list_devices()
    return _found["hardware"]


def _list_devices() -> Hardware:
    import shutil

    with native_stderr_quiet():
        import tensorflow as tf

        cpus = tf.config.list_physical_devices("CPU")
        gpus = tf.config.list_physical_devices("GPU")
    return Hardware(
        cpus=len(cpus),
        gpus=tuple(d.name for d in gpus),
        tpu_address=tpu_address(),
        local_tpu_devices=local_tpu_devices(),
        libtpu_installed=importlib.util.find_spec("libtpu") is not None,
        nvidia_smi=shutil.which("nvidia-smi") is not None,
    )


def tensorflow_facts() -> dict:
    """What only an imported TensorFlow says about this machine: its version and Keras's,
    the CUDA and cuDNN it was built with, and the GPUs' names (cached)."""
    if "tensorflow" not in _found:
        detect()   # first: TensorFlow imported with its C++ start-up lines kept out of the terminal
        import keras
        import tensorflow as tf

        build = tf.sysconfig.get_build_info()
        gpus = tf.config.list_physical_devices("GPU")
        _found["tensorflow"] = {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "cuda_build": build.get("cuda_version"),
            "cudnn_build": build.get("cudnn_version"),
            "gpus": [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus],
        }
    return _found["tensorflow"]


def found() -> dict:
    """:func:`detect` and :func:`tensorflow_facts` as JSON (a worker's answer to its parent)."""
    return {"hardware": dataclasses.asdict(detect()), "tensorflow": tensorflow_facts()}


def adopt(answer: dict) -> Hardware:
    """Takes what a worker :func:`found` as this process's own answers (the parent's,
    which then need not import TensorFlow); the hardware."""
    listed = answer["hardware"]
    hw = Hardware(**{k: tuple(v) if isinstance(v, list) else v for k, v in listed.items()})
    _found.update(hardware=hw, tensorflow=dict(answer["tensorflow"]))
    return hw


def known() -> bool:
    """Whether :func:`detect` can answer without importing TensorFlow now."""
    return "hardware" in _found or "tensorflow" in sys.modules
