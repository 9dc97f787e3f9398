"""How the two sides of an interleaved comparison differ, as its closing lines say: the cell
settings and environment each side's workers had, and the examples each side read."""

from __future__ import annotations

from distbench.analysis.pairs import examples_differ, examples_hashed


def setting_lines(a, b, cells) -> list[str]:
    """The cell settings in which the sides differ (an ``ab`` side's options, a revision's
    matrix file), as the cells read them (``Side.settings``: ``--devices`` is no difference
    for a `default` cell): a verdict on step times of different batches is not one on throughput."""
    differ: dict[str, tuple] = {}
    for spec in (c.spec for c in cells if c.spec is not None):
        spec_a, spec_b = a.settings(spec), b.settings(spec)
        for k in sorted({*a.changes, *b.changes}):
            if getattr(spec_a, k) != getattr(spec_b, k):
                differ.setdefault(k, (getattr(spec_a, k), getattr(spec_b, k)))
    env_a, env_b = getattr(a, "env", None) or {}, getattr(b, "env", None) or {}
    for k in sorted({*env_a, *env_b}):   # an environment variable (oneDNN off) had gone unsaid
        if _effective(a, env_a, k) != _effective(b, env_b, k):
            differ.setdefault(k, (env_a.get(k, _inherited(a, k)), env_b.get(k, _inherited(b, k))))
    if not differ:
        return []
    line = "The sides differ in: " + "; ".join(f"{k} A {va}, B {vb}" for k, (va, vb) in differ.items())
    if any(c.pairs and c.per_example for c in cells):   # else: NOT COMPARABLE's line, or one batch after all
        line += (" (a step of another batch is another amount of work: B/A compares the time per example, a step's "
                 "time over its global batch; the medians A and B are per step)")
    return [line]


_UNKNOWN = object()   # a variable a side inherits at a value not known here: unlike any value set


def _effective(side, env: dict, name: str):
    """The value ``name`` has in the side's workers (set, or inherited from the command)."""
    known = getattr(side, "inherited", None) or {}
    return env[name] if name in env else known.get(name) if name in known else _UNKNOWN


def _inherited(side, name: str) -> str:
    """A variable the side does not set, as its workers had it from the command."""
    known = getattr(side, "inherited", None) or {}
    if name not in known:
        return "(as inherited)"
    return "(unset)" if known[name] is None else f"{known[name]} (as inherited)"


def examples_lines(cells) -> list[str]:
    """Cells whose sides trained on other examples but tested on the same ones (records'
    ``fingerprint`` and ``test_fingerprint``): their test metrics compare, and a change of
    training examples is said (one of test examples is ACCURACY NOT COMPARABLE's line)."""
    other = [f"{c.cell} ({examples_differ(c.pairs, 'fingerprint')})" for c in cells
             if examples_differ(c.pairs, "fingerprint") and not examples_differ(c.pairs) and examples_hashed(c.pairs)]
    return [f"The sides trained on other examples: {', '.join(other)}; their test examples are the same, so their "
            "test metrics compare"] if other else []
