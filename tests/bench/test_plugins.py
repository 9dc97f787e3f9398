"""Workloads from outside the repository: references, entry points, the matrix file."""

import os
import re
import subprocess
import sys
import textwrap

import pytest
from distbench import plugins, workloads
from distbench.core.errors import UserError
from distbench.session import matrix_file
from distbench.workloads.registry import WORKLOADS

MODEL = textwrap.dedent('''
    from distbench import TextClassifier

    class Tiny(TextClassifier):
        name = "{name}"
        vocab_size, num_classes, sequence_length = 100, 2, 20

        def build_model(self, vocab_size):
            import keras
            return keras.Sequential([keras.Input((20,), dtype="int32"), keras.layers.Embedding(vocab_size, 4),
                                     keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1, activation="sigmoid")])

    class NotAWorkload:
        name = "nothing"
''')


@pytest.fixture
def model_file(tmp_path, request):
    name = f"tiny_{request.node.name[-12:].replace('[', '_').replace(']', '').replace('-', '_')}"
    path = tmp_path / f"models_{name}.py"   # a module name of its own: imports are cached per name
    path.write_text(MODEL.format(name=name))
    yield path, name
    if name in WORKLOADS:
        WORKLOADS.unregister(name)


def test_a_file_reference_is_loaded_registered_and_carried_to_the_cell(model_file, tiny):
    from distbench.scenarios.tasks import run_cell

    path, name = model_file
    names, refs = plugins.resolve([f"{path}:Tiny", "reuters_cnn"], "workload")
    assert names == [name, "reuters_cnn"] and refs == [f"workload={path}:Tiny"]
    assert workloads.get(name).build_model(100).count_params() == 100 * 4 + 4 + 1
    assert plugins.resolve([f"{path}:Tiny"], "workload")[0] == [name]     # loading again is a no-op
    WORKLOADS.unregister(name)                                             # as in a fresh worker
    record = run_cell(tiny(name, "default", "custom", plugins=tuple(refs), steps_per_epoch=4, global_batch=8))
    assert record["status"] == "ok" and record["data"]["source"] == "synthetic"
    assert set(record["accuracy"]["test"]) == {"examples", "accuracy", "auc"}
    assert record["definition"]["workload"] and record["definition"]["loop"]


def test_a_module_reference_and_bad_references_say_what_is_wrong(model_file, monkeypatch):
    path, name = model_file
    monkeypatch.syspath_prepend(str(path.parent))
    assert plugins.resolve([f"{path.stem}:Tiny"], "workload") == ([name], [f"workload={path.stem}:Tiny"])
    with pytest.raises(UserError, match="Cannot import 'no_such_module'"):
        plugins.load("no_such_module:X", "workload")
    # The candidates are the classes the file defines, not the modules or base classes it imports.
    with pytest.raises(UserError, match="has no attribute 'Missing' \\(the classes it defines: Tiny, NotAWorkload\\)"):
        plugins.load(f"{path}:Missing", "workload")
    with pytest.raises(UserError, match=r"NotAWorkload is not a workload: subclass distbench.Workload \(give it name, "
                                        r"build_model and data\) or distbench.TextClassifier \(see docs/own-model.md\)"
                                        r"\.$"):   # not the base class's internals (kind, load, cells, resolve, ...)
        plugins.load(f"{path}:NotAWorkload", "workload")
    with pytest.raises(UserError, match="no file"):
        plugins.load("/no/such/file.py:Tiny", "workload")


@pytest.mark.parametrize("form", ["file", "module"])
def test_a_script_that_exits_while_imported_is_one_line_not_the_script_s_exit(tmp_path, monkeypatch, capsys, form):
    """``sys.exit(main())`` at a module's end: distbench exited with the script's status
    (0, silently: no run, no error), SystemExit not being an Exception."""
    from distbench.cli.main import main

    (tmp_path / "train_script.py").write_text("import sys\n\ndef main():\n    return 0\n\nsys.exit(main())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ref = f"{tmp_path / 'train_script.py'}:Net" if form == "file" else "train_script:Net"
    assert main(["run", "--workload", ref, "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "it exited while imported (SystemExit(0))" in err, err
    assert 'put it under `if __name__ == "__main__":`' in err and not (tmp_path / "results").exists()


@pytest.mark.parametrize("form", ["file", "module"])
def test_a_script_that_calls_os_exit_while_imported_is_one_line_not_a_silent_pass(tmp_path, form):
    """A training script that ends in ``os._exit(0)`` (past TensorFlow's hangs at exit): the
    command ended there, exit 0 and not a word, which a CI gate reads as a pass."""
    (tmp_path / "train_script.py").write_text("import os\n\nprint('trained')\nos._exit(0)\n")
    ref = "train_script.py:Net" if form == "file" else "train_script:Net"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-m", "distbench", "run", "--workload", ref], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and "it called os._exit(0) while imported" in result.stderr, result.stderr
    assert not (tmp_path / "results").exists()


def test_a_name_taken_by_another_class_is_refused(tmp_path):
    path = tmp_path / "clash.py"
    path.write_text(MODEL.format(name="reuters_cnn"))
    with pytest.raises(UserError, match="workload name 'reuters_cnn' is taken by distbench.workloads.reuters_cnn.ReutersCnn"):
        plugins.load(f"{path}:Tiny", "workload")
    # Taken by a class loaded from a file: named by its file, not the module name distbench made up for it.
    first, second = tmp_path / "one" / "model.py", tmp_path / "two" / "model.py"
    for where in (first, second):
        where.parent.mkdir()
        where.write_text(MODEL.format(name="points_taken"))
    plugins.load(f"{first}:Tiny", "workload")
    try:
        with pytest.raises(UserError, match=f"workload name 'points_taken' is taken by {re.escape(str(first))}:Tiny; "):
            plugins.load(f"{second}:Tiny", "workload")
    finally:
        WORKLOADS.unregister("points_taken")   # not left for the session's later tests


def test_entry_points_register_their_classes_and_a_broken_one_is_skipped(model_file, monkeypatch, caplog):
    import importlib.metadata

    path, name = model_file
    monkeypatch.syspath_prepend(str(path.parent))

    class EntryPoint:
        def __init__(self, ep_name, value):
            self.name, self.value = ep_name, value

        def load(self):
            module, _, attr = self.value.partition(":")
            return getattr(__import__(module), attr)

    found = [EntryPoint("tiny", f"{path.stem}:Tiny"), EntryPoint("broken", "no_such_module:X")]
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: found if group == "distbench.workloads" else [])
    monkeypatch.setattr(WORKLOADS, "_discovered", False)
    WORKLOADS.names()
    assert name in WORKLOADS.names()
    assert "skipped the workload plugin broken = no_such_module:X" in caplog.text


def test_the_matrix_file_is_read_checked_and_overridden(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent('''
        [project]
        name = "x"
        [tool.distbench]
        workloads = ["models.py:Tiny", "reuters_cnn"]
        strategies = ["default"]
        data = "texts"
        global-batch = 16
        repeats = 2
        threshold = 0.3
    '''))
    path = matrix_file.find(tmp_path / "sub")
    assert path == tmp_path / "pyproject.toml"
    values = matrix_file.read(path)
    # A file is relative to the matrix file's folder, and imports its neighbours from there.
    assert values["workload"] == [f"{tmp_path / 'models.py'}:Tiny@{tmp_path}", "reuters_cnn"]
    assert values["data"] == str(tmp_path / "texts") and values["global_batch"] == 16 and values["threshold"] == 0.3
    merged = matrix_file.merge(values, {"repeats": 5, "strategy": [], "profile": None, "guard_seeds": 0})
    assert merged["repeats"] == 5 and merged["strategy"] == ["default"] and merged["guard_seeds"] == 0
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nworkers = "two"\n')
    with pytest.raises(UserError, match="workers must be an integer; received 'two'"):
        matrix_file.read(path)
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nepochs = 0\n')   # a type right, a value wrong
    with pytest.raises(UserError, match=f"^{tmp_path / 'pyproject.toml'}: Epochs [(]--epochs[)] must be an integer >= 1; received 0"):
        matrix_file.read(path)
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nstrategys = ["default"]\n')
    with pytest.raises(UserError, match="unknown key 'strategys' in the matrix. Valid: .*strategies") as refused:
        matrix_file.read(path)
    assert ", keras, " in str(refused.value) and ", workload," not in str(refused.value)   # keras = [...] is valid
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert matrix_file.find(tmp_path / "sub") is None or matrix_file.find(tmp_path / "sub") != tmp_path / "pyproject.toml"


def test_a_declared_plugin_is_loaded_without_being_selected_and_its_cells_carry_it(model_file, monkeypatch):
    from distbench.cli.main import build_parser
    from distbench.session import options
    from distbench.session.session import Session

    path, name = model_file
    project = path.parent
    (project / "pyproject.toml").write_text(
        f'[tool.distbench]\nplugins = ["{path.name}:Tiny"]\nworkloads = ["{name}"]\nstrategies = ["default"]\n'
        'loops = ["custom"]\nguard_seeds = 0\n')
    values = matrix_file.merge(matrix_file.read(project / "pyproject.toml"),
                               options.from_namespace(build_parser().parse_args(["run"])))
    (cell,) = Session.from_options(values).plan
    assert cell.id == f"{name}-default-custom" and cell.plugins == (f"workload={path}:Tiny@{project}",)
    WORKLOADS.unregister(name)
    # The command line's --plugin does the same.
    args = build_parser().parse_args(["run", "--plugin", f"{path}:Tiny", "--workload", name, "--strategy", "default",
                                      "--loop", "custom", "--guard-seeds", "0"])
    (cell,) = Session.from_options(options.from_namespace(args)).plan
    assert cell.plugins == (f"workload={path}:Tiny",)


def test_a_plugin_s_name_selects_it_where_the_matrix_file_lists_workloads(model_file, monkeypatch, tmp_path):
    """A project whose matrix file lists its workloads: ``--plugin REF --workload NAME`` (or
    the file's ``plugins``) was refused as "Unknown workload NAME", the name being looked for
    among the file's workloads before any plugin was loaded."""
    from distbench.cli.main import _with_matrix_file, build_parser
    from distbench.session import options
    from distbench.session.session import Session

    path, name = model_file
    project = path.parent
    (project / "other.py").write_text(MODEL.format(name=f"{name}_other").replace("class Tiny", "class Other"))
    matrix = '[tool.distbench]\nworkloads = ["other.py:Other"]\nstrategies = ["default"]\nloops = ["custom"]\n'
    (project / "pyproject.toml").write_text(matrix)
    monkeypatch.chdir(project)
    for argv, plugin in ((["--plugin", f"{path.name}:Tiny"], f"workload={path}:Tiny"),
                         ([], f"workload={path}:Tiny@{project}")):
        if not argv:   # the file's plugins instead of --plugin
            (project / "pyproject.toml").write_text(matrix + f'plugins = ["{path.name}:Tiny"]\n')
        args = build_parser().parse_args(["run", *argv, "--workload", name, "--guard-seeds", "0"])
        _with_matrix_file(args)
        (cell,) = Session.from_options(options.from_namespace(args)).plan
        assert cell.id == f"{name}-default-custom" and cell.plugins == (plugin,), cell
        WORKLOADS.unregister(name)
    if f"{name}_other" in WORKLOADS:
        WORKLOADS.unregister(f"{name}_other")


def test_a_matrix_file_s_file_reference_imports_its_neighbours_from_the_file_s_folder(tmp_path, monkeypatch):
    """``models/tagger.py:Tagger`` in a matrix file imports ``tagger_helpers`` from the
    project's top folder (the matrix file's), typed from any folder; as a plain path, only
    the file's own folder is searched (as Python runs a script)."""
    from distbench.core import references

    project = tmp_path / "proj"
    (project / "models").mkdir(parents=True)
    (project / "tagger_helpers.py").write_text("WIDTH = 7\n")
    (project / "models" / "tagger.py").write_text("from tagger_helpers import WIDTH\n\nclass Tagger:\n    width = WIDTH\n")
    (project / "pyproject.toml").write_text('[tool.distbench]\nworkloads = ["models/tagger.py:Tagger"]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(UserError, match="No module named 'tagger_helpers'"):
        references.find(f"{project / 'models' / 'tagger.py'}:Tagger")
    (ref,) = matrix_file.read(project / "pyproject.toml")["workload"]
    assert ref == f"{project / 'models' / 'tagger.py'}:Tagger@{project}"
    assert references.find(ref).width == 7


def test_the_matrix_file_takes_an_option_as_the_command_line_spells_it(tmp_path):
    """``deadline = 60`` as ``--deadline 60`` (its field is deadline_s)."""
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\ndeadline = 60\nconnect-deadline = 30\n')
    values = matrix_file.read(tmp_path / "pyproject.toml")
    assert values["deadline_s"] == 60.0 and values["connect_deadline_s"] == 30.0
    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\ndeadline = 60\ndeadline_s = 50\n')
    with pytest.raises(UserError, match="'deadline_s' sets deadline_s, which the matrix already sets; give it once"):
        matrix_file.read(tmp_path / "pyproject.toml")


def test_a_workload_the_matrix_file_names_is_selectable_by_name_from_the_command_line(model_file):
    """``--workload NAME`` replaces the file's workloads, and its references stay loaded."""
    from distbench.cli.main import build_parser
    from distbench.session import options
    from distbench.session.session import Session

    path, name = model_file
    (path.parent / "pyproject.toml").write_text(f'[tool.distbench]\nworkloads = ["{path.name}:Tiny", "reuters_cnn"]\n')
    args = build_parser().parse_args(["run", "--workload", name, "--strategy", "default", "--loop", "custom",
                                      "--guard-seeds", "0"])
    values = matrix_file.merge(matrix_file.read(path.parent / "pyproject.toml"), options.from_namespace(args))
    (cell,) = Session.from_options(values).plan
    assert cell.id == f"{name}-default-custom" and cell.plugins == (f"workload={path}:Tiny@{path.parent}",)
    # A built-in selected instead: its cells carry none of the file's references.
    args = build_parser().parse_args(["run", "--workload", "reuters_cnn", "--strategy", "default", "--loop", "custom",
                                      "--guard-seeds", "0"])
    values = matrix_file.merge(matrix_file.read(path.parent / "pyproject.toml"), options.from_namespace(args))
    (cell,) = Session.from_options(values).plan
    assert cell.id == "reuters_cnn-default-custom" and cell.plugins == ()


def test_a_project_module_named_like_python_s_own_is_named_only_by_an_import_error(tmp_path):
    """The hint named the project's code.py for "ValueError: unknown split 'code'" (a review);
    only an import error's module name is one."""
    from distbench.core.references import stdlib_shadow

    (tmp_path / "code.py").write_text("")
    (tmp_path / "profile.py").write_text("")
    assert stdlib_shadow("ValueError: unknown split 'code'", [str(tmp_path)]) == ""
    for reason in ("ImportError: cannot import name 'UNITS' from 'profile' (/lib/profile.py)",
                   "AttributeError: module 'profile' has no attribute 'run'"):
        assert stdlib_shadow(reason, [str(tmp_path)]).startswith(
            f"; the project's {tmp_path / 'profile.py'} has the name of Python's own module 'profile'")
