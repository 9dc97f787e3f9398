import distbench.loops as loops
import pytest
from distbench import strategies, workloads
from distbench.core.errors import UserError
from distbench.core.registry import Registry


def test_registries_hold_the_documented_names_in_order():
    assert strategies.STRATEGIES.names() == ["default", "one_gpu", "virtual", "mirrored", "tpu", "multi_worker",
                                             "parameter_server"]
    assert workloads.WORKLOADS.names() == ["reuters_cnn", "multibranch", "matmul"]
    assert loops.LOOPS.names() == ["fit", "train_on_batch", "custom"]


@pytest.mark.parametrize(
    "get, typo, kind",
    [(strategies.get, "mirorred", "strategy"), (workloads.get, "reuters", "workload"), (loops.get, "fitt", "loop")],
)
def test_unknown_names_list_the_valid_ones(get, typo, kind):
    with pytest.raises(UserError, match=rf"Unknown {kind} '{typo}'\. Known: .+"):
        get(typo)


def test_duplicate_names_are_refused():
    registry = Registry("thing")

    @registry.register
    class A:
        name = "a"

    with pytest.raises(ValueError, match="Duplicate thing name 'a'"):

        @registry.register
        class B:
            name = "a"


def test_unregister_removes_a_name_and_refuses_unknown_ones():
    registry = Registry("thing")

    @registry.register
    class A:
        name = "a"

    assert registry.unregister("a") is A
    assert "a" not in registry
    with pytest.raises(UserError, match="Unknown thing 'a'"):
        registry.unregister("a")

