"""The matrix file's selections: an empty list is refused, naming the file (it read as not
given, and ran every built-in workload)."""

import pytest
from distbench.core.errors import UserError
from distbench.session import matrix_file


@pytest.mark.parametrize("key", ["workloads", "strategies", "loops"])
def test_an_empty_selection_is_refused_naming_the_file(tmp_path, key):
    path = tmp_path / "distbench.toml"
    path.write_text(f"{key} = []\n")
    with pytest.raises(UserError, match=rf"^{path}: {key} = \[\] selects nothing; name at least one, or leave {key} "
                                        rf"out to run them all\.$"):
        matrix_file.read(path)
    path.write_text(f'{key} = ["x"]\n')
    assert list(matrix_file.read(path).values()) == [["x"]]


@pytest.mark.parametrize("key, name, kind", [("workloads", "reuters_cnm", "workload"),
                                             ("strategies", "defualt", "strategy"), ("loops", "fitt", "loop")])
def test_an_unknown_name_from_the_file_is_refused_naming_the_file(tmp_path, monkeypatch, capsys, key, name, kind):
    """The same refusal as on the command line, with the file named; a name the command line
    gave is the command line's (no file named), and one that replaces the file's runs."""
    from distbench.cli.main import main

    (tmp_path / "distbench.toml").write_text(f'{key} = ["{name}"]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-save"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"distbench: error: {tmp_path / 'distbench.toml'}: Unknown {kind} '{name}'. Known: "), err
    assert main(["run", "--no-save", f"--{kind}", "nope"]) == 2
    assert capsys.readouterr().err.startswith(f"distbench: error: Unknown {kind} 'nope'. Known: ")


@pytest.mark.parametrize("text, said", [
    ('workloads = ["models.py:Nope"]', "{d}/models.py has no attribute 'Nope' (the classes it defines: Small)."),
    ('workloads = ["gone.py:Small"]', "Cannot load '{d}/gone.py:Small': no file {d}/gone.py."),
    ('workloads = ["models.py:X"]', "{d}/models.py:X: expected a workload class, got int."),
    ('strategies = ["models:Small"]', "models:Small: a strategy must subclass distbench.strategies.base."),
    ('plugins = ["models.py:X"]', "{d}/models.py:X: expected a workload class, got int."),
])
def test_a_reference_from_the_file_that_does_not_load_is_refused_naming_the_file(tmp_path, monkeypatch, capsys,
                                                                                   text, said):
    """The line named the module or the class, not where the reference was written; one
    the command line gives is the command line's (no file named)."""
    from distbench.cli.main import main

    (tmp_path / "models.py").write_text("X = 1\n\nclass Small:\n    pass\n")
    (tmp_path / "distbench.toml").write_text(text + "\n")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-save"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"distbench: error: {tmp_path / 'distbench.toml'}: ") and err.count("\n") == 1, err
    assert said.format(d=tmp_path) in err and "@/" not in err, err
    (tmp_path / "distbench.toml").write_text('strategies = ["default"]\n')
    assert main(["run", "--no-save", "--workload", "models.py:Nope"]) == 2
    assert capsys.readouterr().err == (f"distbench: error: {tmp_path}/models.py has no attribute 'Nope' "
                                       "(the classes it defines: Small).\n")


def test_a_name_the_file_s_reference_would_give_says_why_the_reference_did_not_load(tmp_path, monkeypatch, capsys):
    """``--workload points`` where the file's ``model.py:Points`` fails at import (here, from
    a folder where a relative path it reads is missing) read "Unknown workload 'points'",
    though `distbench list` shows it where it loads: the reference's own error is said too
    (alone, it would hide a typo's refusal)."""
    from distbench.cli.main import main

    (tmp_path / "distbench.toml").write_text('workloads = ["model.py:Points"]\n')
    (tmp_path / "model.py").write_text('raise RuntimeError("boom at import")\n')
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-save", "--workload", "points"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("distbench: error: Unknown workload 'points'"), err
    assert "; a reference of the matrix file that may define it did not load: " in err and "RuntimeError: boom at import" in err, err


@pytest.mark.parametrize("key", ["data", "results", "target", "profile"])
def test_an_empty_text_is_refused_naming_the_file(tmp_path, key):
    """``data = ""`` and ``results = ""`` read as the file's own folder (a relative path
    joined to it), and the others as not given."""
    path = tmp_path / "distbench.toml"
    path.write_text(f'{key} = " "\n')
    with pytest.raises(UserError, match=rf"^{path}: {key} = ' ' is empty; valid: "):
        matrix_file.read(path)


def test_the_file_s_target_is_run_s_and_leaves_the_step_time_comparisons_alone(tmp_path, monkeypatch):
    """``target = "default"`` in the matrix file made ab, check --against, bisect and tune
    refuse to run ("Interleaved pairs compare step times"), and no command-line value could
    clear it; they compare step times, so the file's target is run's alone."""
    from distbench.cli.main import _with_matrix_file, build_parser

    (tmp_path / "distbench.toml").write_text('target = "default"\nstrategies = ["default"]\nmax_steps = 300\n')
    monkeypatch.chdir(tmp_path)
    for argv, target in ((["run"], "default"), (["ab", "--b", "--intra-op-threads 2"], None),
                         (["check", "--against", "HEAD~1"], None), (["bisect", "HEAD~3"], None), (["tune"], None)):
        args = build_parser().parse_args(argv)
        _with_matrix_file(args)
        assert args.target == target, argv
        assert args.max_steps == (300 if target else None), argv   # what bounds the target goes with it
        assert args.strategy == ["default"]   # the rest of the file still applies



def test_another_version_s_file_is_read_without_what_its_side_does_not_take(tmp_path):
    """check --against reads the revision's matrix file for its cell settings only: an old
    commit's `threshold = 1.5` or `data = ""`, refused by rules newer than the file, stopped
    the command though that side never uses them."""
    from distbench.session.paired_run import NOT_FROM_VERSION

    path = tmp_path / "distbench.toml"
    path.write_text('threshold = 1.5\ndata = ""\nworkloads = ["x"]\nepochs = 3\n')
    with pytest.raises(UserError, match="threshold 1.5 reads as 150%"):
        matrix_file.read(path)
    assert matrix_file.read(path, unused=(*NOT_FROM_VERSION, "threshold")) == {"epochs": 3}


def test_a_revision_s_target_settings_are_not_a_difference_between_the_sides(tmp_path):
    """Both versions' files set `target` and `max_steps = 300`: this tree's are dropped for the
    pairs (they compare step times), and the revision's were read, so its side was said to
    differ in max_steps (300 against 1000) and was stored so."""
    from types import SimpleNamespace

    from distbench.session.paired_run import version_changes
    from distbench.session.session import base_spec

    ours, theirs = tmp_path / "distbench.toml", tmp_path / "rev" / "distbench.toml"
    theirs.parent.mkdir()
    ours.write_text('target = "default"\nmax_steps = 300\neval_every = 10\n')
    theirs.write_text('target = "default"\nmax_steps = 300\neval_every = 10\nepochs = 3\n')
    version = SimpleNamespace(place=lambda path: str(theirs))
    assert version_changes(version, str(ours), base_spec({}), {}) == {"epochs": 3}


def test_a_revision_from_before_the_project_declared_a_matrix_runs_with_this_one(tmp_path):
    """The revision's pyproject.toml has no [tool.distbench] yet: its side ran the defaults
    (steps_per_epoch 100 against 40: "NOT COMPARABLE") and its empty selection read as
    "selects every workload", three MISSING lines. It is read as having no matrix file."""
    from types import SimpleNamespace

    from distbench.session.paired_run import dropped, version_changes
    from distbench.session.session import base_spec

    ours, theirs = tmp_path / "pyproject.toml", tmp_path / "rev" / "pyproject.toml"
    theirs.parent.mkdir()
    ours.write_text('[project]\nname = "p"\n\n[tool.distbench]\nworkloads = ["model.py:M"]\nsteps_per_epoch = 40\n')
    theirs.write_text('[project]\nname = "p"\n')
    version = SimpleNamespace(place=lambda path: str(theirs))
    assert version_changes(version, str(ours), base_spec({"steps_per_epoch": 40}), {}) == {}
    assert dropped(version, str(ours), {}) == ()


@pytest.mark.parametrize("text, kind", [("[tool]\ndistbench = 5\n", "5"),
                                        ("[[tool.distbench]]\nloops = ['fit']\n", "a list of tables ([[tool.distbench]])")])
def test_a_tool_distbench_that_is_no_table_is_one_line_for_every_command(tmp_path, monkeypatch, capsys, text, kind):
    """It was an AttributeError's traceback, exit 1 (check's "regression"), and pytest's
    INTERNALERROR."""
    from distbench.cli.main import main

    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    monkeypatch.chdir(tmp_path)
    for argv in (["list"], ["run", "--no-save"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == (f"distbench: error: The matrix file {path}: [tool.distbench] is {kind}, not a table; give one "
                       "[tool.distbench] table of run options (strategies = [...], loops = [...], ...).\n"), err


@pytest.mark.parametrize("text", ["results = 5", "data = 3", "results = true"])
def test_a_path_that_is_no_string_is_refused(tmp_path, text):
    """`results = 5` was read as the folder `5`, and the run saved there."""
    path = tmp_path / "distbench.toml"
    path.write_text(text + "\n")
    key, _, value = text.partition(" = ")
    shown = {"true": "True"}.get(value, value)
    with pytest.raises(UserError, match=rf"^{path}: {key} must be a path, a string; received {shown}\.$"):
        matrix_file.read(path)


def test_a_number_where_the_option_takes_text_is_read_as_the_command_line_reads_it(tmp_path):
    """``prefetch = 4`` (N batches, as ``--prefetch 4``) was refused: "prefetch must be a string"."""
    path = tmp_path / "distbench.toml"
    path.write_text("prefetch = 4\n")
    assert matrix_file.read(path)["prefetch"] == "4"
    path.write_text("prefetch = true\n")
    with pytest.raises(UserError, match="prefetch must be a string; received True"):
        matrix_file.read(path)


def test_a_file_that_is_not_utf_8_is_passed_over_or_one_line_as_toml_reads_it(tmp_path, monkeypatch, capsys):
    """A Latin-1 pyproject.toml of the project (an author's name), nothing of distbench's in
    it, was a UnicodeDecodeError's traceback from every command; a distbench.toml that is
    not UTF-8 is one line."""
    from distbench.cli.main import main

    (tmp_path / "pyproject.toml").write_bytes(b'[project]\nname = "x"\nauthors = [{name = "J\xfcrgen M\xfcller"}]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 0   # not distbench's to judge: the default matrix
    capsys.readouterr()
    (tmp_path / "distbench.toml").write_bytes(b'\xff\xfeloops = ["fit"]\n')
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"distbench: error: Cannot read the matrix file {tmp_path / 'distbench.toml'}: ") and \
        err.count("\n") == 1, err


@pytest.mark.parametrize("text", ["eval_every = 5\n", "max_steps = 300\n"])
def test_what_bounds_a_target_run_is_refused_from_the_file_without_a_target(tmp_path, monkeypatch, capsys, text):
    """Refused on the command line, the file's (and the pytest plugin's) ran as if not given."""
    from distbench.cli.main import main

    (tmp_path / "distbench.toml").write_text(text + 'workloads = ["matmul"]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-save"]) == 2
    err = capsys.readouterr().err
    assert " a time-to-target run; give --target too" in err and err.count("\n") == 1, err
    (tmp_path / "distbench.toml").write_text(text + 'workloads = ["matmul"]\ntarget = "accuracy=0.5"\n')
    assert main(["list"]) == 0   # with a target, taken


def test_a_reference_without_its_class_name_is_refused_as_written(tmp_path, monkeypatch, capsys):
    """The matrix file's folder, joined to the reference for its workers, was read as the
    class name: "plain.py has no attribute '@/tmp/project'"."""
    from distbench.cli.main import main

    (tmp_path / "plain.py").write_text("class Foo:\n    pass\n")
    (tmp_path / "distbench.toml").write_text('workloads = ["plain.py:"]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-save"]) == 2
    err = capsys.readouterr().err
    assert f"Bad reference '{tmp_path / 'plain.py'}:': give module:Attribute or path/to/file.py:Attribute." in err, err
    assert "@" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize("text, said", [("repeats = 0", "repeats = 0: give an integer from 1 to 1000."),
                                        ("guard_seeds = -1", "guard_seeds = -1: give an integer from 0 to 1000 (0 or 1 "),
                                        ("repeats = 1000000000", "repeats = 1000000000: give an integer from 1 to 1000.")])
def test_a_session_setting_out_of_range_in_the_file_is_named_with_the_file(tmp_path, monkeypatch, capsys, text, said):
    """They read as a flag never typed: "Repeats (--repeats) must be an integer >= 1"."""
    from distbench.cli.main import main

    (tmp_path / "distbench.toml").write_text(text + "\n")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-save"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"distbench: error: {tmp_path / 'distbench.toml'}: {said}") and err.count("\n") == 1, err


def test_a_file_with_a_relative_import_named_by_its_path_says_to_name_it_as_a_module(tmp_path, monkeypatch, capsys):
    """"attempted relative import with no known parent package", and nothing said of the
    module form that loads it."""
    from distbench.cli.main import main

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "layers.py").write_text("WIDTH = 8\n")
    (tmp_path / "models" / "rel.py").write_text("from .layers import WIDTH\n\nclass Rel:\n    pass\n")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-save", "--workload", "models/rel.py:Rel"]) == 2
    err = capsys.readouterr().err
    assert "attempted relative import" in err and err.rstrip().endswith(
        "a file that imports relative to its package is named as a module: package.module:Class") and \
        err.count("\n") == 1, err


def test_two_matrix_files_in_one_folder_are_refused_not_one_chosen_unsaid(tmp_path, monkeypatch, capsys):
    """distbench.toml won over pyproject.toml's [tool.distbench] and nothing said so: every
    strategy with fit ran where pyproject.toml selected default and custom. A pyproject.toml
    without the table is not a matrix file."""
    from distbench.cli.main import main

    (tmp_path / "pyproject.toml").write_text('[tool.distbench]\nstrategies = ["default"]\nloops = ["custom"]\n')
    (tmp_path / "distbench.toml").write_text('loops = ["fit"]\n')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for argv in (["list"], ["run", "--no-save"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == (f"distbench: error: Two matrix files in {tmp_path}: distbench.toml and [tool.distbench] in "
                       "pyproject.toml; keep one of them (distbench reads one).\n"), err
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "p"\n')
    from distbench.session import matrix_file

    assert matrix_file.find() == tmp_path / "distbench.toml"
