"""A cell carries the settings its strategy and workload read, and only those."""

from distbench.cli.main import build_parser
from distbench.session import options
from distbench.session.session import Session
from distbench.strategies.base import SETTINGS, StrategyAdapter
from distbench.strategies.registry import STRATEGIES

OTHERS = ["--devices", "4", "--workers", "4", "--cross-device-ops", "one_device", "--matmul-shape", "64,64,64"]


def _plan(*argv):
    args = build_parser().parse_args(["run", "--workload", "reuters_cnn", "--workload", "matmul", "--strategy",
                                      "default", "--strategy", "virtual", "--strategy", "mirrored", "--strategy",
                                      "multi_worker", "--loop", "custom", "--guard-seeds", "0", *argv])
    return {c.id: c for c in Session.from_options(options.from_namespace(args)).plan}


def test_a_setting_for_other_strategies_neither_renames_a_cell_nor_changes_what_it_is():
    """--devices 4 (for `virtual`) made a `default` cell's stored runs incomparable with the
    ones before it ("devices 2 -> 4"), and --cross-device-ops renamed `default` cells
    (`...-default-custom-one_device`), so that compare found no cell in common."""
    plain, given = _plan(), _plan(*OTHERS)
    assert given["reuters_cnn-default-custom"] == plain["reuters_cnn-default-custom"]      # the same measurement
    assert given["reuters_cnn-multi_worker-custom"].workers == 4                           # what each reads, kept
    assert {given["reuters_cnn-multi_worker-custom"].devices, given["matmul-default"].devices} == {2}
    virtual = given["reuters_cnn-virtual-custom-one_device"]
    assert (virtual.devices, virtual.cross_device_ops, virtual.workers) == (4, "one_device", 2)
    assert given["reuters_cnn-mirrored-custom-one_device"].devices == 2
    assert given["matmul-default"].matmul_shape == (64, 64, 64)
    assert given["reuters_cnn-virtual-custom-one_device"].matmul_shape == plain["reuters_cnn-virtual-custom"].matmul_shape


def test_every_adapter_reads_only_settings_it_is_built_with_and_a_user_s_reads_all():
    for name in STRATEGIES.names():
        assert set(STRATEGIES.get(name).reads) <= set(SETTINGS), name
    assert StrategyAdapter.reads == SETTINGS   # a user's adapter that does not say: every setting names its cells
