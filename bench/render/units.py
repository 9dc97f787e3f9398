"""How numbers look to a reader: every unit is formatted here, once.

Renderers (tables, report, the CLI's closing lines) call these; logic modules return
plain numbers and never format them.
"""

from __future__ import annotations


def ms(seconds: float | None) -> str:
    """``12.34`` (milliseconds, two decimals); ``-`` when unknown."""
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def ms_short(seconds: float | None) -> str:
    """Milliseconds with two decimals below 100 (``5.95``, ``13.71``), then four significant
    digits (``121.4``, ``1234``): the terminal summary's narrower columns."""
    if seconds is None:
        return "-"
    value = seconds * 1e3
    decimals = 2 if round(value, 2) < 100 else 1 if round(value, 1) < 1000 else 0
    return f"{value:.{decimals}f}"


def ms_range_short(interval: tuple[float, float] | None) -> str:
    """``119.6-126.4``, as :func:`ms_short`."""
    return "-" if interval is None else f"{ms_short(interval[0])}-{ms_short(interval[1])}"


def seconds(value: float | None) -> str:
    """``31.2 s``; ``not reached`` for a censored time (inf); ``-`` when unknown."""
    if value is None:
        return "-"
    return "not reached" if value == float("inf") else f"{value:.1f} s"


def estimate(value: float | None, target: bool) -> str:
    """A verdict's quantity: a median step in ms, or a time to target in seconds."""
    return seconds(value) if target else (ms(value) + " ms" if value is not None else "-")


def ms_range(interval: tuple[float, float] | None) -> str:
    """``11.90-12.80`` (milliseconds)."""
    return "-" if interval is None else f"{interval[0] * 1e3:.2f}-{interval[1] * 1e3:.2f}"


def ratio(value: float | None, interval: tuple[float, float] | None = None) -> str:
    """``1.08`` or ``1.08 [0.97, 1.21]``."""
    if value is None:
        return "-"
    return f"{value:.2f}" if interval is None else f"{value:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def times(value: float) -> str:
    """A factor: ``x1.27``."""
    return f"x{value:.2f}"


def percent_change(ratio_value: float) -> str:
    """A ratio as a signed change: 1.031 -> ``+3.1%``."""
    return f"{(ratio_value - 1) * 100:+.1f}%"


def percent(fraction: float) -> str:
    """0.03 -> ``3%``; below 1%, two significant digits (0.000001 -> ``0.0001%``, not ``0%``)."""
    if 0 < abs(fraction) < 0.01:
        return f"{fraction * 100:.2g}%"
    return f"{fraction * 100:.0f}%"


def metric(value: float | None) -> str:
    """A test metric (accuracy, AUC): three decimals."""
    return "-" if value is None else f"{value:.3f}"


def signed_metric(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def mib(n_bytes: float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 2**20:.0f}"


def rate(examples_per_s: float | None) -> str:
    return "-" if examples_per_s is None else f"{examples_per_s:.0f} ex/s"


def share(fraction: float) -> str:
    """A share of a whole, one decimal below 10%: 0.044 -> ``4.4%``, 0.65 -> ``65%``."""
    return f"{fraction * 100:.1f}%" if fraction < 0.1 else percent(fraction)


def gflops(value: float) -> str:
    return f"{value:.1f} GFLOP/s"


def p_value(p: float | None) -> str:
    return "-" if p is None else f"{p:.1e}"


def count(n: int, noun: str) -> str:
    """``1 cell``, ``3 cells``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def interval_cell(result, short: bool = False) -> str:
    """A cell's 95% interval of its median step, or ``n=3: none`` where its steady samples
    are too few for one (their range was shown as a 95% interval: about 75% for 3)."""
    if result.few_samples:
        return f"n={sum(len(p) for p in result.per_process)}: none"
    return ms_range_short(result.interval) if short else ms_range(result.interval)
