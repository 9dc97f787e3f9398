import logging
import os

import numpy as np
import pytest
from distbench import workloads
from distbench.core.errors import UserError
from distbench.workloads import data


def test_synthetic_reuters_has_the_real_shapes_and_an_imbalanced_prior():
    d = workloads.get("reuters_cnn").load_data("synthetic", seed=0)
    assert d.x_train.shape == (8982, 300) and d.x_test.shape == (2246, 300)
    assert d.x_train.dtype == np.int32 and d.x_train.max() < 30982 and d.x_train.min() >= 0
    assert set(np.unique(d.y_train)) <= set(range(46))
    counts = np.bincount(d.y_train, minlength=46)
    assert 0.22 < counts.max() / counts.sum() < 0.31   # majority class ~26%
    assert d.source == "synthetic" and d.describe()["seed"] == 0


def test_synthetic_imdb_shapes_balanced_binary():
    d = workloads.get("multibranch").load_data("synthetic", seed=1)
    assert d.x_train.shape == (25000, 200) and d.x_test.shape == (25000, 200)
    assert set(np.unique(d.y_train)) == {0, 1}
    assert abs(d.y_train.mean() - 0.5) < 0.02


def test_synthetic_data_is_deterministic_per_seed():
    w = workloads.get("reuters_cnn")
    a, b, c = w.load_data("synthetic", 3), w.load_data("synthetic", 3), w.load_data("synthetic", 4)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)


def test_auto_falls_back_to_synthetic_when_keras_cannot_download(monkeypatch, caplog):
    w = workloads.get("reuters_cnn")

    def offline():
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: Name or service not known")

    monkeypatch.setattr(w, "keras_loader", lambda: offline)
    monkeypatch.setattr(data, "_announced", set())
    with caplog.at_level(logging.WARNING, logger="workloads.data"):
        assert w.resolve_source("auto", seed=0) == "synthetic"
        assert w.resolve_source("auto", seed=0) == "synthetic"
    announcements = [r for r in caplog.records if "using synthetic data" in r.message]
    assert len(announcements) == 1            # announced once, not silent, not repeated
    assert "URL fetch failure" in announcements[0].message


def test_auto_uses_keras_when_its_loader_works(monkeypatch, tmp_path):
    # No memo of an earlier offline attempt (a real run within the hour leaves one).
    monkeypatch.setenv("DISTBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(data, "_tried", {})
    w = workloads.get("multibranch")
    fake = ((np.array([[1, 2, 3]], dtype=object), np.array([1])), (np.array([[4, 5]], dtype=object), np.array([0])))
    monkeypatch.setattr(w, "keras_loader", lambda: (lambda: fake))
    assert w.resolve_source("auto", seed=0) == "keras"
    d = w.load_data("keras", seed=0)
    assert d.source == "keras" and d.x_train.shape == (1, 200)
    assert list(d.x_train[0, -3:]) == [1, 2, 3] and d.x_train[0, 0] == 0   # pre-padded


@pytest.mark.parametrize("bad", ["imdb", "/no/such/folder"])
def test_unknown_sources_name_the_valid_ones(bad):
    with pytest.raises(UserError, match="Valid: auto, keras, synthetic, or a folder"):
        data.check_source(bad)


def test_folder_without_class_subfolders_is_refused(tmp_path):
    (tmp_path / "only.txt").write_text("hello")
    with pytest.raises(UserError, match="has 0 sub-folder"):
        workloads.get("multibranch").load_data(str(tmp_path), seed=0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_folder_is_refused(tmp_path):
    tmp_path.chmod(0)
    try:
        with pytest.raises(UserError, match="Cannot read data folder"):
            workloads.get("multibranch").load_data(str(tmp_path), seed=0)
    finally:
        tmp_path.chmod(0o755)


def test_binary_workload_refuses_a_folder_with_three_classes(tmp_path):
    for name in "abc":
        (tmp_path / name).mkdir()
        (tmp_path / name / "1.txt").write_text("some words")
        (tmp_path / name / "2.txt").write_text("more words")
    with pytest.raises(UserError, match="has 3 class folders.*at most 2"):
        workloads.get("multibranch").load_data(str(tmp_path), seed=0)


def test_movie_reviews_folder_is_vectorised_to_the_workload_s_length(movie_reviews):
    d = workloads.get("multibranch").load_data(movie_reviews, seed=0)
    assert d.source == f"folder:{movie_reviews}"
    assert d.x_train.shape == (1600, 200) and d.x_test.shape == (400, 200)
    assert d.details["class_names"] == ["neg", "pos"] and d.details["layout"] == "flat"
    assert d.x_train.max() < 10000 and (d.x_train > 1).mean() > 0.5   # real tokens, mostly known
    assert 0.5 <= d.describe()["majority_class_share"] < 0.6            # 1,000 / 1,000, split at random


def _texts(folder, n, words="good film"):
    folder.mkdir(parents=True)
    for k in range(n):
        (folder / f"{k}.txt").write_text(f"{words} {k}")


def test_a_train_test_folder_uses_the_given_split(tmp_path):
    # As aclImdb ships: train/ and test/ with the class folders, train/ also an unlabelled one.
    for split, n in (("train", 6), ("test", 4)):
        _texts(tmp_path / split / "neg", n, "bad film")
        _texts(tmp_path / split / "pos", n)
    _texts(tmp_path / "train" / "unsup", 3, "some film")
    layout = data.folder_layout(str(tmp_path))
    assert layout.kind == "split" and layout.classes == ("neg", "pos") and layout.ignored == ("train/unsup",)
    d = workloads.get("multibranch").load_data(str(tmp_path), seed=0)
    assert len(d.y_train) == 12 and len(d.y_test) == 8 and d.details["class_names"] == ["neg", "pos"]
    assert d.describe()["majority_class_share"] == 0.5 and d.details["layout"] == "split"


def test_a_folder_too_small_to_split_is_refused_not_keras_s_no_files_found(tmp_path):
    """One or two texts per class: 20% of 4 is no file, and Keras read "No training text
    files found", a raw error beside a folder of .txt files."""
    _texts(tmp_path / "neg", 2), _texts(tmp_path / "pos", 2)
    with pytest.raises(UserError, match="has 4 .txt files; split 80/20 here, it needs 5 [(]one to test[)], or train/"):
        data.check_source(str(tmp_path))
    (tmp_path / "pos" / "2.txt").write_text("a fifth text")
    assert data.check_source(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize("make, message", [
    (lambda root: (_texts(root / "train" / "neg", 2), _texts(root / "test" / "pos", 2)),
     "has train/ and test/, but they share 0 class sub-folder"),
    (lambda root: (_texts(root / "train" / "neg", 2), _texts(root / "train" / "pos", 2),
                   (root / "test" / "neg").mkdir(parents=True), _texts(root / "test" / "pos", 2)),
     "Class folder .*test/neg is unreadable or has no .txt files \\(read as train/ \\+ test/\\)"),
])
def test_a_wrong_layout_is_refused_naming_the_layouts_expected(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(UserError, match=message) as err:
        data.check_source(str(tmp_path))
    assert "train/ and test/, each with the same class sub-folders" in str(err.value)


def test_synthetic_data_is_cached_once_and_read_back_identical(tmp_path, monkeypatch):
    import numpy as np
    from distbench.workloads import data as data_mod
    from distbench.workloads.reuters_cnn import ReutersCnn

    monkeypatch.setenv("DISTBENCH_CACHE", str(tmp_path))
    spec = ReutersCnn.synthetic_spec
    first = data_mod.synthetic(spec, seed=3)
    (cached,) = tmp_path.iterdir()
    again = data_mod.synthetic(spec, seed=3)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert again.describe() == first.describe()
    fresh = data_mod._generate(spec, seed=3)   # what the cache stands for
    assert np.array_equal(fresh.x_train, again.x_train)
    data_mod.synthetic(spec, seed=4)
    assert len(list(tmp_path.iterdir())) == 2   # another seed, another file
    monkeypatch.setenv("DISTBENCH_CACHE", "off")
    assert data_mod._cache_path(spec, 3) is None


def test_the_keras_attempt_is_bounded_once_per_process_and_remembered(tmp_path, monkeypatch):
    """Behind a firewall that drops packets the loader never returns: auto gives up after
    its timeout, does not try again in this process (ab resolves data for both sides), and
    the next process goes to synthetic data at once."""
    import threading
    import time

    from distbench.workloads import data

    monkeypatch.setenv("DISTBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(data, "KERAS_TIMEOUT_S", 0.5)
    monkeypatch.setattr(data, "_tried", {})
    calls, hang = [], threading.Event()

    def never_answers():
        calls.append(1)
        hang.wait(30)

    started = time.monotonic()
    ok, why = data.keras_available(never_answers, "reuters_cnn")
    assert not ok and "no answer within 0.5 s" in why and time.monotonic() - started < 5
    assert data.keras_available(never_answers, "reuters_cnn") == (ok, why) and len(calls) == 1
    monkeypatch.setattr(data, "_tried", {})                 # a new process
    ok, why = data.keras_available(never_answers, "reuters_cnn")
    assert not ok and "not tried again within the hour" in why and len(calls) == 1
    hang.set()


@pytest.mark.parametrize("value", ["abc", "30s", "nan", "-1", "0", "1e9"])
def test_a_keras_timeout_that_is_no_number_of_seconds_is_one_line_before_any_run(tmp_path, monkeypatch, capsys, value):
    """Read at import, ``DISTBENCH_KERAS_TIMEOUT=abc`` was a traceback from every command
    (``--help`` too); ``nan`` and ``-1`` were taken."""
    from distbench.cli.main import main

    monkeypatch.setenv("DISTBENCH_KERAS_TIMEOUT", value)
    assert main(["list"]) == 0   # a command that reads no data is not refused
    capsys.readouterr()
    code = main(["run", "--workload", "reuters_cnn", "--strategy", "default", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err == (f"distbench: error: DISTBENCH_KERAS_TIMEOUT={value!r}: give the seconds the Keras "
                                 "dataset loader may take, a number above 0 and at most 240 (unset: 30).\n"), err
    assert not list(tmp_path.iterdir())   # nothing run, nothing saved
    monkeypatch.setenv("DISTBENCH_KERAS_TIMEOUT", " 12.5 ")
    assert data.keras_timeout_s() == 12.5


def test_a_download_that_failed_for_want_of_the_network_is_not_waited_on_again_for_another_dataset(
        tmp_path, monkeypatch):
    """Offline, reuters_cnn's download failed; multibranch's then waited its own timeout
    (30 s each behind a firewall that drops packets). Now its loader is not called within
    the hour, unless its file is in Keras's folder (it then loads from there)."""
    from distbench.workloads import data

    monkeypatch.setenv("DISTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(data, "_tried", {})
    (tmp_path / "keras").mkdir()
    calls = []

    def offline():
        calls.append("reuters")
        raise Exception("URL fetch failure on https://storage.googleapis.com/x/reuters.npz: None -- [Errno -2] "
                        "Name or service not known")

    def imdb():
        calls.append("imdb")

    assert not data.keras_available(offline, "reuters_cnn", "reuters.npz")[0]
    ok, why = data.keras_available(imdb, "multibranch", "imdb.npz")
    assert (ok, calls) == (False, ["reuters"])
    assert why.startswith(f"imdb.npz is not in {tmp_path / 'keras' / 'datasets'}, and downloading reuters_cnn's "
                          "failed at ") and "not tried again within the hour; --data keras tries it now" in why
    monkeypatch.setattr(data, "_tried", {})                 # a new process, the file now there
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    (tmp_path / "keras" / "datasets" / "imdb.npz").write_bytes(b"")
    assert data.keras_available(imdb, "multibranch", "imdb.npz") == (True, "") and calls == ["reuters", "imdb"]
    monkeypatch.setattr(data, "_tried", {})                 # a loader that failed otherwise says nothing of others
    monkeypatch.setenv("DISTBENCH_CACHE", str(tmp_path / "cache2"))

    def corrupt():
        raise ValueError("File is not a zip file")

    assert not data.keras_available(corrupt, "reuters_cnn", "reuters.npz")[0]
    assert data.keras_available(lambda: calls.append("again"), "other", "other.npz") == (True, "")


def test_the_examples_hash_follows_their_values_not_where_they_came_from():
    """The record's ``data.fingerprint``: a change to one value of any array (features or
    labels, train or test), its dtype or its shape changes it, the same values held
    anywhere do not; named inputs in any order, text held as objects;
    a dataset function's examples are not hashed (None)."""
    from distbench.workloads.inputs import Data

    d = workloads.get("reuters_cnn").load_data("synthetic", seed=3)
    again = workloads.get("reuters_cnn").load_data("synthetic", seed=3)
    assert d.describe()["fingerprint"] == again.fingerprint() and len(d.fingerprint()) == 16
    edited = data.TextData(d.x_train.copy(), d.y_train, d.x_test, d.y_test, "folder:/elsewhere", d.vocab_size,
                           d.num_classes)
    assert edited.fingerprint() == d.fingerprint()            # another source, the same examples
    for part in ("x_train", "y_train", "x_test", "y_test"):   # one value of any array
        arrays = {k: getattr(d, k).copy() for k in ("x_train", "y_train", "x_test", "y_test")}
        arrays[part][(7,) * arrays[part].ndim] += 1
        edited = data.TextData(**arrays, source=d.source, vocab_size=d.vocab_size, num_classes=d.num_classes)
        assert edited.fingerprint() != d.fingerprint(), part
    y = np.zeros(2)
    assert (Data(np.zeros(6, np.float32), y, y, y).fingerprint() != Data(np.zeros(6, np.int32), y, y, y).fingerprint())
    assert (Data(np.arange(6).reshape(3, 2), y, y, y).fingerprint()
            != Data(np.arange(6).reshape(2, 3), y, y, y).fingerprint())   # the same bytes, other examples
    x, y = {"a": np.arange(6).reshape(3, 2), "b": np.array(["x", "y", "z"], dtype=object)}, np.array([0, 1, 0])
    named = Data({"a": x["a"], "b": x["b"]}, y, x, y)
    assert named.fingerprint() == Data({"b": x["b"], "a": x["a"]}, y, x, y).fingerprint()
    assert named.fingerprint() != Data({"a": x["a"], "b": np.array(["x", "y", "q"], dtype=object)}, y, x, y).fingerprint()
    assert named.fingerprint() != Data({"a": x["a"].astype(np.int8), "b": x["b"]}, y, x, y).fingerprint()
    assert Data(train_fn=lambda: None, test_fn=lambda: None).fingerprint() is None
