"""The project's files a cell's process reads from Python (``definition["files"]``): seen
through the ``open`` audit event whatever reads them, named relative to the working folder,
hashed by content; writes, code, hidden folders and files elsewhere are not its inputs."""

import os

import numpy as np
from distbench.trackers import reads


def test_files_read_under_the_folder_are_named_and_hashed_by_content(tmp_path, monkeypatch):
    project, outside = tmp_path / "project", tmp_path / "outside.json"
    (project / "conf").mkdir(parents=True)
    (project / ".venv").mkdir()
    for name, text in {"settings.json": '{"lr": 0.1}', "conf/vocab.txt": "a b", "helper.py": "X = 1",
                       ".venv/cfg.json": "{}", "big.bin": "x" * 64}.items():
        (project / name).write_text(text)
    outside.write_text("{}")
    np.save(project / "x.npy", np.arange(4))
    monkeypatch.setattr(reads, "HASHED_BYTES", 32)
    monkeypatch.chdir(project)

    reads.start()
    with open("settings.json") as f:   # builtins.open, relative
        f.read()
    (project / "conf" / "vocab.txt").read_text()    # pathlib
    np.load("x.npy")                                  # numpy
    os.close(os.open("big.bin", os.O_RDONLY))         # os.open
    for ignored in ("helper.py", ".venv/cfg.json", str(outside)):
        with open(ignored) as f:
            f.read()
    with open("written.txt", "w") as f:                  # a write is no input
        f.write("out")
    found = reads.stop()
    with open("settings.json") as f:                     # after stop: not noted
        f.read()

    assert list(found) == ["big.bin", "conf/vocab.txt", "settings.json", "x.npy"]
    assert found["big.bin"] == "size 64"
    assert len(found["settings.json"]) == 12 and found["settings.json"] != found["conf/vocab.txt"]
    (project / "settings.json").write_text('{"lr": 0.01}')
    reads.start()
    with open("settings.json") as f:
        f.read()
    again = reads.stop()
    assert list(again) == ["settings.json"] and again["settings.json"] != found["settings.json"]
