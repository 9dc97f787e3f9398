"""Issue 18's size rule, checked: no module of the package over 400 lines, no function over
50, and a project import inside a function says why in a comment just above it (it is
allowed only to keep a cost, TensorFlow above all, out of a process that must not pay it).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("bench", "strategies", "workloads")   # mapped into the one `distbench` package
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def breaches(path: Path) -> list[str]:
    """What in one source file breaks the rule, one line each."""
    text = path.read_text()
    lines, comments = text.splitlines(), _comment_lines(text)
    found = []
    if len(lines) > MAX_MODULE_LINES:
        found.append(f"{path}: {len(lines)} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = node.end_lineno - node.lineno + 1
        if length > MAX_FUNCTION_LINES:
            found.append(f"{path}:{node.lineno} {node.name}: {length} lines (at most {MAX_FUNCTION_LINES})")
        found += [f"{path}:{line} {node.name}: imports {module} inside a function without a comment saying why"
                  for line, module in _inner_imports(node) if not _commented(comments, lines, line, node.lineno)]
    return found


def _inner_imports(function: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(function):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("distbench"):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("distbench")]
    return found


def _comment_lines(text: str) -> set[int]:
    """The lines that hold a comment (not a ``#`` inside a string)."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return {t.start[0] for t in tokens if t.type == tokenize.COMMENT}


def _commented(comments: set[int], lines: list[str], line: int, start: int) -> bool:
    """A comment on the import's line or on one of the three lines above it, below the
    ``def``; or above the block of imports the import is in."""
    if any(i in comments for i in range(max(start + 1, line - 3), line + 1)):
        return True
    above = line - 1
    while above > start and lines[above - 1].lstrip().startswith(("import ", "from ")):
        above -= 1
    return above > start and above in comments


def _sources() -> list[Path]:
    return sorted(p for folder in SOURCES for p in (ROOT / folder).rglob("*.py"))


def test_the_package_keeps_the_size_rule():
    assert len(_sources()) > 100   # the three folders were found
    found = [line for path in _sources() for line in breaches(path)]
    assert not found, "\n".join(found)


def test_the_rule_finds_what_breaks_it(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(50))
    long = tmp_path / "long.py"
    long.write_text(f"def f():\n{body}\n\n\ndef g():\n    from distbench.core import stats\n"
                    + "\n" * MAX_MODULE_LINES)
    found = breaches(long)
    assert any("f: 51 lines" in line for line in found)
    assert any(line.startswith(f"{long}: ") and line.endswith(f"(at most {MAX_MODULE_LINES})") for line in found)
    assert any("g: imports distbench.core inside a function" in line for line in found)
    quoted = tmp_path / "quoted.py"   # a '#' in a string is no comment
    quoted.write_text('def g():\n    x = "#"\n    from distbench.core import stats\n')
    assert len(breaches(quoted)) == 1
    short = tmp_path / "short.py"
    short.write_text("def g():\n    # keeps TensorFlow out of the parent\n    from distbench.core import stats\n")
    assert breaches(short) == []
