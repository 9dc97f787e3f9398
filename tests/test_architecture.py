"""The import rule (pyproject.toml's import-linter contracts) holds, and a violation fails it.

import-linter reads packages from folders; distbench's ``distbench`` is mapped from three
source folders (``bench/``, ``strategies/``, ``workloads/``), so the check runs on a copy
laid out as the wheel installs it.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = shutil.which("lint-imports")
pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is not installed (pip install -e '.[test]')")


def _installed_layout(tmp_path: Path) -> Path:
    """``distbench`` as the wheel lays it out: bench/ with strategies/ and workloads/ inside."""
    package = tmp_path / "src" / "distbench"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "bench", package, ignore=ignore)
    shutil.copytree(ROOT / "strategies", package / "strategies", ignore=ignore)
    shutil.copytree(ROOT / "workloads", package / "workloads", ignore=ignore)
    return package.parent


def _lint(src: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([LINT, "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=src, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_contracts_hold(tmp_path):
    result = _lint(_installed_layout(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    # a child module importing a parent one
    ("trackers/timing.py", "from distbench.session import plan",
     ["The child never imports the parent BROKEN", "distbench.trackers.timing -> distbench.session.plan"]),
    # a cycle between packages
    ("core/stats.py", "from distbench.storage import results",
     ["No import cycles between distbench's packages BROKEN"]),
], ids=["child-imports-parent", "cycle"])
def test_a_violation_breaks_them(tmp_path, module, line, broken):
    src = _installed_layout(tmp_path)
    path = src / "distbench" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa: E402,F401\n")
    result = _lint(src)
    assert result.returncode != 0
    for text in broken:
        assert text in result.stdout, result.stdout[-3000:]


def test_an_editable_install_maps_one_import_package():
    """An editable install's finder maps ``distbench`` (and its mapped subpackages) only;
    the built wheel's contents are checked in tests/test_user_project.py."""
    finders = [f for entry in sys.path if os.path.isdir(entry)
               for f in Path(entry).glob("__editable___distbench_*_finder.py")]
    if not finders:
        pytest.skip("distbench is not installed in editable mode here")
    line = next(x for x in finders[0].read_text().splitlines() if x.startswith("MAPPING"))
    mapping = ast.literal_eval(line.split("=", 1)[1].strip())
    assert {name.split(".")[0] for name in mapping} == {"distbench"}, mapping
