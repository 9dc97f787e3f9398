"""What a cell's ``workload_code`` hash covers, on a user's modules written to disk and
imported as the worker imports them: the model's module and every module of the project it
imports, however far down; not where the project sits."""

import importlib
import os
import sys
import textwrap

import pytest
from distbench.core import references
from distbench.scenarios.definition import definition, workload_code

MODELS = """
    import utils
    from config import Settings
    from sizes import BASE

    HIDDEN = 64
    hidden = 8
    SETTINGS = Settings(32)


    class Wide:
        def build_model(self):
            return utils.layers(HIDDEN) + [SETTINGS.width, hidden, BASE]
"""

UTILS = """
    import deeper


    def layers(width):
        return [width, deeper.factor() * width]
"""

FILES = {"models.py": MODELS, "utils.py": UTILS, "deeper.py": "def factor():\n    return 2\n",
         "config.py": "class Settings:\n    def __init__(self, width):\n        self.width = width\n",
         "sizes.py": "BASE = 4\n", "unrelated.py": "X = 1\n"}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Writes the project's modules (``changes``: name -> (old, new) text) and imports them
    afresh, as each worker does; returns the hash of ``models.Wide``."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def code(**changes) -> str:
        for name, text in FILES.items():
            old, new = changes.get(name.split(".")[0], ("", ""))
            (tmp_path / name).write_text(textwrap.dedent(text).replace(old, new) if old else textwrap.dedent(text))
        for name in FILES:
            sys.modules.pop(name.split(".")[0], None)
        importlib.invalidate_caches()
        return workload_code(importlib.import_module("models").Wide)

    yield code
    for name in FILES:
        sys.modules.pop(name.split(".")[0], None)


def test_a_change_in_any_module_the_model_imports_changes_its_hash(project):
    base = project()
    assert project() == base
    for changed in ({"utils": ("width, deeper", "width, 3 * deeper")},   # a helper it calls
                    {"deeper": ("return 2", "return 3")},                  # a helper of the helper
                    {"config": ("self.width = width", "self.width = 2 * width")},   # a config class
                    {"models": ("hidden = 8", "hidden = 16")},             # a lower-case setting
                    {"models": ("Settings(32)", "Settings(64)")},          # a config instance
                    {"sizes": ("BASE = 4", "BASE = 5")}):                  # an int imported from a module
        assert project(**changed) != base, changed
    assert project(unrelated=("X = 1", "X = 2")) == base   # a module it does not import


def test_module_state_is_not_code(project):
    base = project()
    sys.modules["models"].hidden = 99   # set while running: the source is what is hashed
    assert workload_code(sys.modules["models"].Wide) == base


def test_the_same_file_loaded_from_two_folders_hashes_alike(tmp_path, monkeypatch):
    """A file reference's module is named after its absolute path: a project moved, a CI
    workspace or check --against's worktree must not make its code another code."""
    found = []
    for folder in ("p1", "p2"):
        where = tmp_path / folder
        where.mkdir()
        (where / "model.py").write_text("class Sentiment:\n    width = 64\n")
        monkeypatch.chdir(where)
        found.append(workload_code(references.find("model.py:Sentiment")))
    assert found[0] == found[1]


def test_the_module_hash_of_older_records_is_kept(project):
    """``workload`` still hashes the workload's module alone, so records stored before
    ``workload_code`` compare with new ones as they did."""
    project()
    found = definition(sys.modules["models"].Wide(), None)
    assert set(found) == {"workload", "workload_code"}
    project(utils=("width, deeper", "width, 3 * deeper"))
    assert definition(sys.modules["models"].Wide(), None)["workload"] == found["workload"]


def test_a_built_in_workload_covers_distbench_s_workload_modules_only():
    from distbench import workloads
    from distbench.scenarios import definition as module

    reuters = workloads.get("reuters_cnn")
    assert module._own(sys.modules["distbench.workloads.base"], builtin=True)
    assert not module._own(sys.modules["distbench.loops.base"], builtin=True)
    assert not module._own(sys.modules["distbench.workloads.base"], builtin=False)   # a user's: not distbench's
    assert workload_code(type(reuters)) == workload_code(type(reuters))


def test_a_revision_s_worker_refuses_project_modules_from_the_working_tree(tmp_path, monkeypatch):
    """check --against's side A starts in the revision's worktree; a module of the project
    imported from the working tree instead (at load, or lazily while the cell runs) is refused."""
    from distbench.core.worktrees import VERSION_ENV
    from distbench.scenarios import definition

    root, version = tmp_path / "project", tmp_path / "worktree"
    for folder in (root, version):
        (folder / "src" / "lazypkg").mkdir(parents=True)
        (folder / "src" / "lazypkg" / "__init__.py").write_text("")
        (folder / "src" / "lazypkg" / "layers.py").write_text("WIDTH = 8\n")
    (version / "src" / "lazypkg" / "model.py").write_text(
        "class Model:\n    def build(self):\n        from lazypkg import layers\n        return layers.WIDTH\n")
    monkeypatch.syspath_prepend(str(version / "src"))
    monkeypatch.setenv(VERSION_ENV, f"{root}{os.pathsep}{version}")
    model = importlib.import_module("lazypkg.model")
    try:
        definition.check_version(model.Model)   # the version's own module: nothing to refuse
        sys.path.insert(0, str(root / "src"))   # the working tree's, first, as an editable install's
        sys.modules.pop("lazypkg.layers", None)
        importlib.invalidate_caches()
        sys.modules["lazypkg"].__path__.insert(0, str(root / "src" / "lazypkg"))
        assert model.Model().build() == 8   # imported lazily, from the working tree
        with pytest.raises(definition.WorkingTreeCode, match=r"^this version's worker imported lazypkg\.layers from "
                                                             r"the working tree"):
            definition.check_version(model.Model)
    finally:
        if str(root / "src") in sys.path:
            sys.path.remove(str(root / "src"))
        for name in [n for n in sys.modules if n == "lazypkg" or n.startswith("lazypkg.")]:
            del sys.modules[name]
