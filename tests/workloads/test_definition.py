"""What a cell's ``workload_code`` hash covers, on a user's modules written to disk and
imported as the worker imports them: the model's own code and the helpers it calls, not
the other models of its module."""

import importlib
import sys
import textwrap

import pytest
from distbench.scenarios.definition import definition, workload_code

MODELS = """
    import utils

    HIDDEN = 64
    _calls = 0   # state, not code


    class Wide:
        def build_model(self):
            return utils.layers(HIDDEN)


    class Other:
        def build_model(self):
            return [HIDDEN // 2]
"""

UTILS = """
    def layers(width):
        return [width, width]


    def unused():
        return 1
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Writes the project's modules and imports them afresh, as each worker does."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(models=MODELS, utils=UTILS):
        (tmp_path / "models.py").write_text(textwrap.dedent(models))
        (tmp_path / "utils.py").write_text(textwrap.dedent(utils))
        for name in ("models", "utils"):
            sys.modules.pop(name, None)
        importlib.invalidate_caches()
        return importlib.import_module("models")

    yield write
    for name in ("models", "utils"):
        sys.modules.pop(name, None)


def codes(module) -> tuple[str, str]:
    return workload_code(module.Wide), workload_code(module.Other)


def test_editing_one_model_leaves_the_other_s_hash_and_changes_its_own(project):
    wide, other = codes(project())
    after = codes(project(MODELS.replace("return [HIDDEN // 2]", "return [HIDDEN // 4]")))
    assert after[0] == wide and after[1] != other


def test_a_helper_module_the_model_calls_is_part_of_its_code(project):
    wide, other = codes(project())
    after = codes(project(utils=UTILS.replace("[width, width]", "[width, width, width]")))
    assert after[0] != wide and after[1] == other
    assert codes(project(utils=UTILS.replace("return 1", "return 2"))) == (wide, other)   # a helper it never calls


def test_constants_count_and_module_state_does_not(project):
    wide, other = codes(project())
    assert codes(project(MODELS.replace("HIDDEN = 64", "HIDDEN = 128"))) != (wide, other)
    module = project()
    module._calls = 5
    assert codes(module) == (wide, other)
    assert codes(project(MODELS.replace("_calls = 0", "_calls = 1"))) == (wide, other)


def test_the_module_hash_of_older_records_is_kept(project):
    """``workload`` still hashes the whole module, so records stored before ``workload_code``
    compare with new ones as they did."""
    module = project()
    found = definition(module.Wide(), None)
    assert set(found) == {"workload", "workload_code"}
    assert definition(project(MODELS.replace("[HIDDEN // 2]", "[HIDDEN // 4]")).Wide(), None)["workload"] != found["workload"]


def test_distbench_s_own_workloads_include_their_base_classes_code():
    from distbench import workloads
    from distbench.scenarios import definition as module

    parts: dict = {}
    module._follow(type(workloads.get("reuters_cnn")), parts)
    assert "distbench.workloads.reuters_cnn:ReutersCnn" in parts and "distbench.workloads.base:TextWorkload" in parts
    assert all(k.startswith("distbench.workloads.") or ":keras_flavour." in k for k in parts), sorted(parts)
