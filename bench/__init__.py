"""distbench's machinery: runs a workload under a strategy adapter with a training loop
and records what happened."""

try:
    from importlib.metadata import version as _version

    __version__ = _version("distbench")
except Exception:  # noqa: BLE001 - not installed (a bare checkout on PYTHONPATH)
    __version__ = "0+unknown"
