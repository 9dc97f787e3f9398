"""fit's calls of ``steps_per_execution`` steps, and the settings they do not fit.

``Model.fit`` with ``steps_per_execution`` N runs N steps per call and calls back (its
timing, its stopping) only after whole calls; an epoch ends a call. Each function returns
why a setting would make a ``fit`` cell measure something other than what was asked
(no steady call, more steps than asked, a target evaluated late), or '' when it does not:
the parent refuses such a cell before any worker (:meth:`distbench.core.config.CellSpec.validate`),
and fit's worker once an epoch's length is known (:mod:`distbench.loops.fit`).
"""

from __future__ import annotations


def calls_problem(epochs: int, steps_per_epoch: int | None, warmup_steps: int, steps_per_execution: int) -> str:
    """Why fit's calls of ``steps_per_execution`` steps (each epoch's last may be shorter)
    leave no timed call after the first (the cold start) and the calls the warm-up steps take
    (:class:`~distbench.trackers.timing.StepTimes`); '' when they do, or when the steps are
    the whole training set (known in the worker only)."""
    if steps_per_execution <= 1 or steps_per_epoch is None:
        return ""
    call = min(steps_per_execution, steps_per_epoch)   # an epoch ends a call: its steps are the longest
    need = 2 + -(-warmup_steps // call)
    if epochs * -(-steps_per_epoch // call) >= need:
        return ""
    return (f"--steps-per-execution {steps_per_execution} leaves fit no steady call in {epochs} x {steps_per_epoch} "
            f"training steps (a cold-start call and the warm-up's come first: it needs {need} calls); give a "
            "smaller one or more steps.")


def rounding_problem(steps_per_epoch: int | None, steps_per_execution: int) -> str:
    """Why fit's calls of ``steps_per_execution`` steps would train more steps than asked:
    Keras 3 runs whole calls and rounds an epoch up to them (28 steps an epoch in calls of
    10 train 30, in calls of 50 train 50; tf-keras runs the last call short); '' when they
    divide the epoch, or when the steps are the whole training set (the worker checks it,
    once known: distbench.loops.fit)."""
    if steps_per_execution <= 1 or steps_per_epoch is None or steps_per_epoch % steps_per_execution == 0:
        return ""
    rounded = -(-steps_per_epoch // steps_per_execution) * steps_per_execution
    return (f"--steps-per-execution {steps_per_execution} does not divide the {steps_per_epoch} steps of an epoch: "
            f"fit runs whole calls, {rounded} steps an epoch, and would train more steps than asked (its accuracy "
            f"set against other loops' or settings' that trained fewer); give a divisor of {steps_per_epoch}, or "
            f"--steps-per-epoch a multiple of {steps_per_execution}.")


def evaluation_problem(eval_every: int, max_steps: int, steps_per_epoch: int | None, steps_per_execution: int) -> str:
    """Why a time-to-target ``fit`` cell would evaluate its target later than every
    ``eval_every`` steps: Keras calls back after whole calls of ``steps_per_execution``
    steps (and an epoch ends a call), so at 25 steps a call of 10 evaluates at 30, 50, 80,
    and reads slower than a loop that evaluates at 25; '' when every point is a call's end."""
    if steps_per_execution <= 1:
        return ""
    asked = {"--eval-every": eval_every, "--max-steps": max_steps, "--steps-per-epoch": steps_per_epoch}
    off = [f"{name} {value}" for name, value in asked.items() if value is not None and value % steps_per_execution]
    if not off:
        return ""
    late, due, step = [], eval_every, 0
    while len(late) < 3:   # the tracker's evaluations: at the first call's end at or past each point due
        step += steps_per_execution
        if step >= due:
            late.append(str(step))
            due = (step // eval_every + 1) * eval_every
    example = f" (every {eval_every} steps: at {', '.join(late)})" if eval_every % steps_per_execution else ""
    return (f"{' and '.join(off)} {'is' if len(off) == 1 else 'are'} not a multiple of --steps-per-execution "
            f"{steps_per_execution}: a time-to-target fit cell is evaluated only after whole calls of "
            f"{steps_per_execution} steps, later than asked{example}, and its time to target would read longer than another loop's; give multiples of "
            f"{steps_per_execution}, or a --steps-per-execution that divides them.")


def steady_before_evaluation(eval_every: int, max_steps: int, warmup_steps: int, unit: int) -> str:
    """Why a time-to-target cell timed in units of ``unit`` steps (fit's calls) may stop before
    any steady step: at its first evaluation (its target reached) or at its budget; '' when it
    cannot."""
    need = unit * (2 + -(-warmup_steps // unit))   # the cold start's unit, the warm-up's, one steady
    first = f"the cold start and {warmup_steps} warm-up steps come first" + (f", in units of {unit} steps" if unit > 1
                                                                             else "")
    if max_steps < need:
        return (f"--max-steps {max_steps} leaves no steady step ({first}): give --max-steps {need} or more, or fewer "
                "--warmup-steps.")
    if eval_every < need:
        return (f"--eval-every {eval_every} may find the target before any steady step ({first}): give --eval-every "
                f"{need} or more, or fewer --warmup-steps.")
    return ""
