"""What makes two stored runs of a cell the same measurement, or not: configuration,
data (the examples themselves where both runs hashed them), the workload's code, the
project's files it read (a settings file) and the model's FLOPs per step
(:func:`differences`). A cell that differs is not compared (``not comparable: ...``),
and ``check`` fails closed on it."""

from __future__ import annotations

from distbench.core import worktrees
from distbench.storage.results import CellResult

# The FLOPs of a model's training step depend on the model, batch and optimizer only (the
# same in every run: distbench.trackers.flops); beyond this share, another model ran.
FLOPS_TOLERANCE = 0.01


# Spec fields that do not change what a cell measures: where its plugins were loaded from,
# its deadlines, what it measures after its steps, and a time-to-target cell's first seed.
IGNORED_FIELDS = ("deadline_s", "connect_deadline_s", "timing_cost_pairs", "plugins", "init_seed")


def differences(a: CellResult, b: CellResult) -> list[str]:
    """What makes two runs of a cell different measurements: their configuration, their
    data, the workload's code (its definition hash), or the model itself, as the FLOPs of
    its training step tell (a model whose widths come from a file its code does not
    name); empty when they compare."""
    found = []
    spec_a, spec_b = a.spec.to_dict(), b.spec.to_dict()
    examples_a, examples_b = a.data_fingerprint, b.data_fingerprint
    # The same examples read from another folder (a moved project, another machine's home,
    # a CI workspace) are the same data; other examples from the same path are not.
    same_examples = bool(examples_a) and examples_a == examples_b
    for field in spec_a:
        if field in IGNORED_FIELDS or spec_a[field] == spec_b.get(field) or (field == "data" and same_examples):
            continue
        if not _moved_folder(field, spec_a, spec_b):
            found.append(f"{field} {spec_a[field]} -> {spec_b.get(field)}")
    if examples_a and examples_b and examples_a != examples_b:
        found.append(f"data examples {examples_a} -> {examples_b}")
    data_a, data_b = a.data_shape, b.data_shape
    for key in data_a:
        if key in data_b and data_a[key] != data_b[key] and key != "source":
            found.append(f"data {key} {data_a[key]} -> {data_b[key]}")
    # Keras data against synthetic data is another measurement; a folder's path may move.
    kind_a, kind_b = a.data_source.split(":")[0], b.data_source.split(":")[0]
    if kind_a != kind_b:
        found.append(f"data source {a.data_source} -> {b.data_source}")
    wa, wb = a.workload_codes(b)
    if wa and wb and wa != wb:
        found.append(f"workload code {wa} -> {wb}")
    found += _files(a.definition.get("files"), b.definition.get("files"))
    fa, fb = a.flops_per_step, b.flops_per_step
    if fa and fb and abs(fb / fa - 1) > FLOPS_TOLERANCE:
        found.append(f"FLOPs per step {fa:,} -> {fb:,}")
    return found


def _files(a: dict | None, b: dict | None) -> list[str]:
    """The project's files both runs read whose contents differ (each run's name -> content
    hash: :mod:`distbench.trackers.reads`); none where either run did not record them. A
    file one run read and the other did not is no difference: the code that reads it is
    the same (else the workload code differs), so it is a cache one run wrote and the next
    read, or a file a launch mode read before the cell began."""
    if a is None or b is None:
        return []
    return [f"file {name} {a[name]} -> {b[name]}" for name in sorted(set(a) & set(b)) if a[name] != b[name]]


def _moved_folder(field: str, spec_a: dict, spec_b: dict) -> bool:
    """The same data folder of a revision read from its temporary worktrees (``check
    --against``'s side A: a new ``distbench-<commit>-<random>/`` folder each run)."""
    moved = field == "data" and worktrees.inside(spec_a[field])
    return bool(moved) and moved == worktrees.inside(spec_b.get(field))
