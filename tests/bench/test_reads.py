"""The project's files a cell's process reads from Python (``definition["files"]``): seen
through the ``open`` audit event whatever reads them, named relative to the data folder or
the working folder, hashed by content; writes, code, hidden folders and files elsewhere
are not its inputs."""

import os

import numpy as np
import pytest
from distbench.trackers import reads


def _read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


@pytest.fixture
def project(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    (project / ".venv").mkdir()
    for name, text in {"settings.json": '{"lr": 0.1}', "conf/vocab.txt": "a b", "helper.py": "X = 1",
                       ".venv/cfg.json": "{}", ".env": "SEED=1", "rw.txt": "r+", "cache.txt": "old"}.items():
        (project / name).write_text(text)
    (tmp_path / "shared.json").write_text('{"shared": 1}')
    (project / "linked.json").symlink_to(tmp_path / "shared.json")   # a link inside the project to outside it
    np.save(project / "x.npy", np.arange(4))
    monkeypatch.setenv("DISTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(project)
    yield project
    reads.stop()


def test_files_read_under_the_working_folder_are_named_and_hashed_by_content(project, tmp_path):
    reads.start()
    _read("settings.json")                            # builtins.open, relative
    (project / "conf" / "vocab.txt").read_text()     # pathlib
    np.load("x.npy")                                  # numpy
    os.close(os.open(".env", os.O_RDONLY))            # os.open; a hidden file is an input
    _read("rw.txt", "r+")                             # read and write: read
    _read("linked.json")
    _read("cache.txt")                                # read, then written: the process's own output
    with open("cache.txt", "w") as f:
        f.write("new")
    for ignored in ("helper.py", ".venv/cfg.json", str(tmp_path / "shared.json")):
        _read(ignored)
    found = reads.stop()

    assert list(found) == [".env", "conf/vocab.txt", "linked.json", "rw.txt", "settings.json", "x.npy"]
    assert len(found["settings.json"]) == 12 and len(set(found.values())) == len(found)
    assert reads._READ is None
    _read("conf/vocab.txt")                           # between stop and start: not noted
    (project / "settings.json").write_text('{"lr": 0.01}')
    reads.start()
    _read("settings.json")
    again = reads.stop()
    assert list(again) == ["settings.json"] and again["settings.json"] != found["settings.json"]


def test_the_data_folder_is_a_root_of_its_own_wherever_it_sits(project, tmp_path):
    """Files beside the examples (statistics, a vocabulary) are named ``<data>/...`` whether
    the folder is outside the project or inside it: the same files elsewhere compare."""
    found = []
    for where, mean in ((tmp_path / "datasets" / "v1", 0), (project / "data", 0), (tmp_path / "datasets" / "v2", 5)):
        where.mkdir(parents=True)
        (where / "stats.json").write_text(f'{{"mean": {mean}}}')
        reads.start(str(where))
        _read(where / "stats.json")
        _read("settings.json")
        found.append(reads.stop())
    assert [list(f) for f in found] == [["<data>/stats.json", "settings.json"]] * 3
    assert found[0] == found[1] and found[0]["<data>/stats.json"] != found[2]["<data>/stats.json"]


def test_a_folder_of_many_files_is_one_entry(project, monkeypatch):
    monkeypatch.setattr(reads, "FOLDER_FILES", 3)
    texts = project / "texts"
    texts.mkdir()
    for i in range(5):
        (texts / f"{i}.txt").write_text(f"document {i}")
    entries = []
    for edit in (False, True):
        if edit:
            (texts / "3.txt").write_text("edited")
        reads.start()
        for i in range(5):
            _read(texts / f"{i}.txt")
        _read("settings.json")
        entries.append(reads.stop())
    assert list(entries[0]) == ["settings.json", "texts/*"] and entries[0]["texts/*"].endswith(" (5 files)")
    assert entries[0]["texts/*"] != entries[1]["texts/*"] and entries[0]["settings.json"] == entries[1]["settings.json"]


def test_a_large_file_is_hashed_whole_once_and_then_read_from_the_cache(project, tmp_path, monkeypatch):
    monkeypatch.setattr(reads, "CACHED_BYTES", 1024)
    weights = np.zeros(4096, dtype=np.float32)
    hashes = []
    for value in (0.0, 1e-3):
        weights[2000] = value                       # one float of a same-size file
        np.save(project / "emb.npy", weights)
        for _ in range(2):
            reads.start()
            np.load("emb.npy")
            hashes.append(reads.stop()["emb.npy"])
    assert hashes[0] == hashes[1] != hashes[2] == hashes[3]
    assert len(list((tmp_path / "cache").glob("file-*.json"))) == 2   # one per version of the file


def test_distbench_s_cache_in_the_project_is_no_input(project, monkeypatch):
    monkeypatch.setenv("DISTBENCH_CACHE", str(project / "cache"))
    (project / "cache").mkdir()
    (project / "cache" / "flops-1.json").write_text("{}")
    reads.start()
    _read("cache/flops-1.json")
    assert reads.stop() == {}


def test_the_root_folder_as_the_working_folder(project, monkeypatch):
    monkeypatch.chdir("/")
    reads.start()
    _read(project / "settings.json")
    assert list(reads.stop()) == [os.path.relpath(project / "settings.json", "/")]


def test_a_working_folder_that_is_gone_turns_it_off_and_names_are_printable(project, tmp_path, monkeypatch):
    odd = os.fsdecode(b"caf\xe9.txt")              # not UTF-8
    (project / odd).write_text("x")
    reads.start()
    _read(odd)
    (name,) = reads.stop()
    name.encode("utf-8")                             # printable under a strict UTF-8 terminal
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    reads.start()
    assert reads.stop() is None
