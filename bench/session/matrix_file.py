"""Parent side: a project's declared matrix, ``[tool.distbench]`` in its ``pyproject.toml``
(or the top level of a ``distbench.toml``).

    [tool.distbench]
    workloads = ["models.py:Sentiment", "reuters_cnn"]
    strategies = ["default", "virtual"]
    loops = ["fit", "custom"]
    data = "data/reviews"        # relative paths are relative to the file
    repeats = 2
    threshold = 0.25             # compare and check between stored runs

Every run option of :mod:`distbench.session.options` may appear, by its name (``global_batch`` or
``global-batch``); ``workloads``/``strategies``/``loops`` are the repeatable selections;
``plugins`` lists references to load without selecting them. The CLI and the pytest
plugin read the same file; options on the command line override it. Unknown keys and
wrong types are refused with a line that names the valid ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from distbench.core import references
from distbench.core.config import CellSpec, fraction, parse_matmul_shape
from distbench.core.errors import UnknownName, Unresolved, UserError
from distbench.session import options

NAMES = ("distbench.toml", "pyproject.toml")
PLURALS = {"workloads": "workload", "strategies": "strategy", "loops": "loop", "plugins": "plugin"}
EXTRA = {"threshold": float}
PATH_KEYS = ("data", "results")


def find(start: str | os.PathLike | None = None) -> Path | None:
    """The nearest ``distbench.toml``, or ``pyproject.toml`` with a ``[tool.distbench]``
    table, in ``start`` or a folder above it (None when there is none; UserError for both
    in one folder)."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        found = [folder / name for name in NAMES if declares(folder / name)]
        if len(found) > 1:   # distbench.toml's had won, unsaid: another selection than pyproject.toml's
            raise UserError(f"Two matrix files in {folder}: distbench.toml and [tool.distbench] in pyproject.toml; "
                            "keep one of them (distbench reads one).")
        if found:
            return found[0]
    return None


def declares(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a matrix file: a ``distbench.toml``, or a ``pyproject.toml`` with a
    ``[tool.distbench]`` table (see :func:`_declares`)."""
    path = Path(path)
    return path.is_file() and (path.name == "distbench.toml" or _declares(path))


def _declares(path: Path) -> bool:
    """Whether ``path`` has a ``[tool.distbench]`` table. One that does not parse and names
    distbench is refused (UserError), not passed over: its matrix would be silently
    replaced by the full default one, or by a matrix file further up; one that does not
    name it is not distbench's to judge."""
    try:
        tool = _toml(path).get("tool", {})
        return isinstance(tool, dict) and "distbench" in tool
    except UserError:
        try:
            mentions = b"distbench" in path.read_bytes()
        except OSError:
            mentions = False
        if mentions:
            raise
        return False


def _toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:   # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:   # TOML is UTF-8 (a Latin-1 file)
        raise UserError(f"Cannot read the matrix file {path}: {exc}.") from None


def _table(path: Path, document: dict) -> dict:
    """The file's distbench table: the whole of a ``distbench.toml``, ``[tool.distbench]`` of
    a ``pyproject.toml``; UserError, one line, when it is no table (``distbench = 5``, or
    ``[[tool.distbench]]``, a list of them)."""
    where = "the file" if path.name == "distbench.toml" else "[tool.distbench]"
    tool = document.get("tool", {}) if isinstance(document.get("tool", {}), dict) else {}
    table = document if path.name == "distbench.toml" else tool.get("distbench", {})
    if not isinstance(table, dict):
        kind = "a list of tables ([[tool.distbench]])" if isinstance(table, list) else f"{table!r}"
        raise UserError(f"The matrix file {path}: {where} is {kind}, not a table; give one [tool.distbench] table of "
                        "run options (strategies = [...], loops = [...], ...).")
    return table


def selection(path: str | os.PathLike) -> dict[str, list[str] | None]:
    """The names a matrix file selects of each kind (workload, strategy, loop, keras), and the
    references it loads (plugin), as written in it, for comparing two versions' files; None
    where it selects them all (or loads none)."""
    path = Path(path)
    document = _toml(path)
    table = _table(path, document)
    found = {}
    for key, name in (*PLURALS.items(), ("keras", "keras")):
        value = table.get(key, table.get(name))
        found[name] = [str(v) for v in value] if isinstance(value, list) else None
    return found


def read(path: str | os.PathLike, unused: tuple[str, ...] = ()) -> dict[str, Any]:
    """The run options ``path`` declares, keyed by option name, checked; those named in
    ``unused`` are left out unread (another version's file: what its side does not take
    from it is not refused by rules newer than the file)."""
    path = Path(path).resolve()
    document = _toml(path)
    table = _table(path, document)
    # By its name or as on the command line: deadline_s or deadline, global_batch or global-batch.
    valid = {**{o.cli[2:].replace("-", "_"): o for o in options.OPTIONS}, **{o.name: o for o in options.OPTIONS}}
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = PLURALS.get(key, key.replace("-", "_"))
        if name in unused or getattr(valid.get(name), "name", None) in unused:
            continue
        if name in EXTRA:   # threshold: a fraction or a percentage ("25%"), as on the command line
            if not isinstance(value, str):
                _typed(path, key, value, float)   # a number (not true/false), read as it was written
            try:
                values[name] = fraction(value, key)
            except UserError as exc:   # a percentage is a string in TOML: threshold = "200%"
                hint = f' In the file a percentage is quoted: {key} = "{value}%".' if "reads as" in str(exc) else ""
                raise UserError(f"{path}: {exc}{hint}") from None
            continue
        option = valid.get(name)
        if option is None:
            keys = sorted([*PLURALS, *EXTRA, *(o.name for o in options.OPTIONS if o.name not in PLURALS.values())])
            raise UserError(f"{path}: unknown key {key!r} in the matrix. Valid: {', '.join(keys)}.")
        if option.name in values:
            raise UserError(f"{path}: {key!r} sets {option.name}, which the matrix already sets; give it once.")
        values[option.name] = _option_value(path, key, value, option)
    for key in PATH_KEYS:
        if isinstance(values.get(key), str) and values[key] not in ("auto", "keras", "synthetic"):
            values[key] = str((path.parent / values[key]).resolve())
    for name in PLURALS.values():
        if values.get(name):
            values[name] = [_relative_ref(path, ref) for ref in values[name]]
    _check_settings(path, values)
    return values


def _check_settings(path: Path, values: dict[str, Any]) -> None:
    """The file's cell settings over the defaults, checked here so that a bad one is named
    with the file (``epochs = 0`` read as if it had been typed)."""
    fields = {o.name: values[o.name] for o in options.OPTIONS
              if o.spec_field and o.name in values and o.name not in ("data", "matmul_shape")}
    for name in options.COUNTS:   # a session's, not a cell's: named with the file too
        value = values.get(name)
        refusal = options.count_refusal(name, value) if value is not None else ""
        if refusal:
            raise UserError(f"{path}: {name} = {value!r}: give {refusal}.")
    try:
        CellSpec.for_profile(values.get("profile") or "quick", workload="", strategy="", loop=None, **fields).validate()
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def _relative_ref(path: Path, ref: str) -> str:
    """A reference in a matrix file means what it means in the file's folder, from any
    folder the command is typed in: ``file.py:Class`` is relative to it, and both kinds
    import from it (``...@folder``: a module, or a file's neighbours, of the project)."""
    target, sep, attr = ref.rpartition(":")
    if not sep or "@" in attr:
        return ref
    if target.endswith(".py") and not os.path.isabs(target):
        target = str((path.parent / target).resolve())
    return references.with_folder(f"{target}:{attr}", str(path.parent.resolve()))


def _option_value(path: Path, key: str, value, option: options.Option):
    if option.repeatable:
        items = value if isinstance(value, list) else [value]
        if not items:   # it read as not given: every workload (or strategy, loop) ran
            raise UserError(f"{path}: {key} = [] selects nothing; name at least one, or leave {key} out to run "
                            "them all.")
        return [_chosen(path, key, _typed(path, key, v, str), option) for v in items]
    if option.flag:
        return _typed(path, key, value, bool)
    if option.name in PATH_KEYS and not isinstance(value, str):   # results = 5 made a folder named 5
        raise UserError(f"{path}: {key} must be a path, a string; received {value!r}.")
    value = _chosen(path, key, _typed(path, key, value, option.type or str), option)
    if isinstance(value, str) and not value.strip():   # data = "" read as the file's own folder
        raise UserError(f"{path}: {key} = {value!r} is empty; valid: {option.help}.")
    if option.name == "matmul_shape":   # refused here, with the file, not when the cells are built
        try:
            parse_matmul_shape(value)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
    return value


def _chosen(path: Path, key: str, value, option: options.Option):
    """``value``, when the option has choices and it is one of them (``keras = ["keras2"]``)."""
    if option.choices and value not in option.choices:
        raise UserError(f"{path}: {key} = {value!r} is not one of {', '.join(option.choices)}.")
    return value


def _typed(path: Path, key: str, value, kind):
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is str and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)   # prefetch = 4, as --prefetch 4 (the option reads its own text)
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        want = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
                list: "a list of strings"}.get(kind, kind.__name__)
        raise UserError(f"{path}: {key} must be {want}; received {value!r}.")
    return value


def where(exc: UserError, path: str | os.PathLike | None, declared: dict[str, Any], given: dict[str, Any]) -> str:
    """``exc``'s line, naming the matrix file ``path`` when what it refuses came from there:
    a reference of the file's (one the command line gave would have no file's folder in
    it), or a name of the file's kind the command line did not replace."""
    if path is None or not isinstance(exc, Unresolved) or exc.name not in (declared.get(exc.kind) or []):
        return str(exc)
    if isinstance(exc, UnknownName) and given.get(exc.kind):
        return str(exc)
    return f"{path}: {exc}"


def merge(declared: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Option values: the command line's where given, else the file's. A name the command
    line selects that no registry knows is looked for among the file's references of that
    kind, so that ``--workload digits`` selects the ``bench.py:Digits`` the file names (and
    only that reference goes into the cells' specs)."""
    out = dict(declared)
    given = {k: v for k, v in given.items() if v is not None and v != [] and v is not False}
    loaded = given.get("plugin") or declared.get("plugin") or []   # --plugin's (else plugins') classes, loaded
    for kind in ("workload", "strategy", "loop"):
        if given.get(kind) and declared.get(kind):
            given[kind] = _by_declared_name(given[kind], declared[kind], kind, loaded)
    out.update(given)
    return out


def _by_declared_name(names: list[str], declared: list[str], kind: str, loaded: list[str]) -> list[str]:
    """``names`` with each one no registry knows replaced by the file's reference whose class
    has that name (a reference that does not load is left for its own selection to refuse);
    the names of the classes ``loaded`` (``--plugin``, ``plugins``) are known as they are."""
    # Here, not at the top: plugins brings the registries (the workloads, numpy), which an
    # ordinary pytest run that only looks for a matrix file must not load.
    from distbench import plugins

    for ref in loaded:
        try:
            plugins.load_declared(ref)
        except UserError:
            continue   # refused with its own message when the selection loads it
    unknown = {n for n in names if not references.is_reference(n) and n not in plugins.registry_of(kind).names()}
    if not unknown:
        return names
    by_name, failed = {}, []
    for ref in (r for r in declared if references.is_reference(r)):
        try:
            by_name.setdefault(getattr(references.find(ref), "name", None), ref)
        except UserError as exc:
            failed.append(exc)
    missing = [n for n in names if n in unknown and n not in by_name]
    if missing:   # the registry's refusal, with the matrix file's own names among the known
        refusal = plugins.registry_of(kind).unknown(missing[0], tuple(n for n in by_name if n))
        if failed:   # the name may be that reference's: why it is not known (`distbench list` shows it where it loads)
            raise UserError(f"{str(refusal).rstrip('.')}; a reference of the matrix file that may define it did not "
                            f"load: {failed[0]}") from None
        raise refusal
    return [by_name.get(n, n) if n in unknown else n for n in names]
