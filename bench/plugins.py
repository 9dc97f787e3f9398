"""Workloads, strategies and loops from outside distbench, for the parent and the worker.

Two ways in:

* **Entry points** of any installed package, in the groups ``distbench.workloads``,
  ``distbench.strategies`` and ``distbench.loops``: each names a class, registered under
  its ``name`` the first time its registry is read (:class:`distbench.core.registry.Registry`).
* **References** on the command line or in the matrix file: ``module:Attribute`` (an
  importable module) or ``path/to/file.py:Attribute`` (:mod:`distbench.core.references`).
  ``--workload my_models.py:Sentiment`` loads the class, registers it, and selects it by
  its ``name``.

A cell's spec lists the references it needs (``CellSpec.plugins``, files made absolute),
so that its worker process, which starts from the built-in registries, loads the same
classes before it runs the cell (:func:`ensure`). A plugin class implements the same small
protocol as the built-ins: :class:`distbench.TextWorkload` (or its shortcut
``TextClassifier``), :class:`distbench.StrategyAdapter`, :class:`distbench.TrainingLoop`.
"""

from __future__ import annotations

from distbench.core import references, tf_startup
from distbench.core.errors import BadReference, UserError
from distbench.core.registry import Registry
from distbench.loops.base import LOOPS, TrainingLoop
from distbench.strategies.base import StrategyAdapter
from distbench.strategies.registry import STRATEGIES
from distbench.workloads.registry import WORKLOADS

REGISTRIES: dict[str, Registry] = {"workload": WORKLOADS, "strategy": STRATEGIES, "loop": LOOPS}
KINDS = tuple(REGISTRIES)


def registry_of(kind: str) -> Registry:
    try:
        return REGISTRIES[kind]
    except KeyError:
        raise ValueError(f"Unknown plugin kind {kind!r}. Known: {', '.join(KINDS)}.") from None


def load(ref: str, kind: str) -> str:
    """Loads the class ``ref`` names, registers it as a ``kind``; returns its name."""
    try:
        return registry_of(kind).add(references.find(ref), where=references.split_folder(ref)[0])
    except UserError as exc:
        raise BadReference(str(exc), kind, ref) from None


def ensure(spec) -> None:
    """Loads the references of a cell's spec (in a worker, before the cell runs). One that
    does not load is passed over when the cell's own workload, strategy and loop are known
    without it: another cell's class, which another version of the project may lack (side
    A of a change that adds a model had failed every cell, the unchanged ones too)."""
    failed = []
    for ref in spec.plugins or ():
        kind, _, target = ref.partition("=")
        try:
            load(target, kind)
        except BadReference as exc:
            failed.append(exc)
    wanted = {"workload": spec.workload, "strategy": spec.strategy, "loop": spec.loop}
    unknown = [kind for kind, name in wanted.items() if name is not None and name not in REGISTRIES[kind]]
    if failed and unknown:   # the cell's own class is among them: the first of its kind says why
        raise next((exc for exc in failed if exc.kind in unknown), failed[0])


def resolve(names: list[str], kind: str) -> tuple[list[str], list[str]]:
    """Names as given (references loaded and replaced by their names), and the references
    a cell's spec must carry (``kind=reference``)."""
    out, refs = [], []
    for name in names or []:
        if references.is_reference(name):
            ref = references.canonical(name)
            out.append(load(ref, kind))
            refs.append(f"{kind}={ref}")
        else:
            out.append(name)
    return out, refs


def load_selection(values: dict) -> list[str]:
    """Loads the references of a selection (``plugin``, and the ``workload``, ``strategy`` and
    ``loop`` lists, whose references are replaced in ``values`` by the names they register);
    returns the references a cell's spec must carry. (In the parent: a module that imports
    Keras at its top brings TensorFlow in, whose start-up lines stay out of the terminal.)"""
    with tf_startup.kept_out():
        refs = [load_declared(ref) for ref in values.get("plugin") or []]
        for kind in KINDS:
            values[kind], found = resolve(values.get(kind) or [], kind)
            refs += found
    return refs


def load_declared(ref: str) -> str:
    """Loads a reference the matrix file's ``plugins`` lists (its kind read from the class:
    a StrategyAdapter, a TrainingLoop, else a workload) without selecting it; returns it as
    a cell's spec carries it (``kind=reference``)."""
    ref = references.canonical(ref)
    try:
        cls = references.find(ref)
        kind = ("strategy" if isinstance(cls, type) and issubclass(cls, StrategyAdapter) else
                "loop" if isinstance(cls, type) and issubclass(cls, TrainingLoop) else "workload")
        registry_of(kind).add(cls, where=references.split_folder(ref)[0])
    except UserError as exc:
        raise BadReference(str(exc), "plugin", ref) from None
    return f"{kind}={ref}"
