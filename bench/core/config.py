"""The specification of one benchmark cell (workload x strategy x loop) and its profiles."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from distbench.core.errors import UserError
from distbench.core import cpus, keras_flavour
from distbench.core.fit_calls import calls_problem, evaluation_problem, rounding_problem, steady_before_evaluation
from distbench.core.targets import parse

# The harness-overhead benchmark's target: the harness adds at most 3% to the median step
# (read by the benchmark, parent and child, and by its renderers).
OVERHEAD_TARGET = 0.03

# quick: a few hundred steps per cell, evaluation on at most 5,000 test examples.
# full: the published recipe's runs, 10 epochs over the whole training set, the whole test set.
SCALINGS = ("strong", "weak")
CROSS_DEVICE_OPS = ("auto", "nccl", "hierarchical_copy", "one_device")
COMMUNICATIONS = ("auto", "ring", "nccl")

PROFILES: dict[str, dict] = {
    "quick": {"epochs": 2, "steps_per_epoch": 100, "eval_examples": 5000, "matmul_shape": (10000, 100, 10000)},
    "full": {"epochs": 10, "steps_per_epoch": None, "eval_examples": None, "matmul_shape": (10000, 100, 100000)},
}


# The matmul workload's shapes, by name (a is MxK, b is KxN; the spec's ``matmul_shape``).
MATMUL_SHAPES = {
    "quick": (10000, 100, 10000),     # c is 10^8 floats (0.4 GB)
    "seed": (10000, 100, 100000),     # the reference size: c is 10^9 floats (~4 GB)
}


# Strategies whose fit runs a call of steps_per_execution steps as given (one replica).
ONE_REPLICA = ("default", "one_gpu")


def fraction(value, what: str, zero_ok: bool = False, any_size: bool = False) -> float:
    """A relative amount (a threshold, a tolerance, an effect) given as a fraction (``0.05``)
    or a percentage (``5%``). A bare number of 1 or more is refused: it is a percentage typed
    without its sign (``--threshold 5`` read as 500%, and a check passed a 2x slow-down);
    100% or more is given as a percentage (``200%``). ``any_size``: a bare number is what it
    says (a tolerance in a metric's own units, a BLEU of 0 to 100)."""
    text = str(value).strip()
    try:
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UserError(f"Bad {what} {text!r}: give a fraction (0.05) or a percentage (5%).") from None
    if not (number >= 0 if zero_ok else number > 0) or not math.isfinite(number):   # nan too
        raise UserError(f"{what} must be {'>= 0' if zero_ok else '> 0'} and finite, a fraction (0.05) or a "
                        f"percentage (5%); received {text!r}.")
    if number >= 1 and not text.endswith("%") and not any_size:
        raise UserError(f"{what} {text} reads as {number:.0%}: give a fraction (0.05) or a percentage (5%); 1 or "
                        "more is given as a percentage (200%).")
    return number


def parse_matmul_shape(text: str) -> tuple[int, int, int]:
    """``quick``, ``seed`` or ``M,K,N`` -> (M, K, N), each a positive integer."""
    if text in MATMUL_SHAPES:
        return MATMUL_SHAPES[text]
    try:
        dims = tuple(int(p) for p in text.split(","))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise UserError(
            f"Bad matmul shape {text!r}: give {', '.join(MATMUL_SHAPES)} or three positive integers "
            "M,K,N (a is MxK, b is KxN)."
        )
    return dims  # type: ignore[return-value]


# What makes a cell's step another amount of work, or its run another number of steps: two
# such sides' step times are no measure of each other's speed, nor their pairs of its noise
# (a version's matrix file that sets another batch: check --against's "not comparable").
WORK_FIELDS = ("global_batch", "scaling", "epochs", "steps_per_epoch")


@dataclass(frozen=True)
class CellSpec:
    """One cell to run, fully specified, JSON-serialisable.

    ``loop`` is None for workloads that do not train (matmul). ``steps_per_epoch`` None
    means one pass over the training set; ``eval_examples`` None means the whole test set.
    """

    workload: str
    strategy: str
    loop: str | None
    profile: str = "quick"
    epochs: int = 2
    steps_per_epoch: int | None = 100
    warmup_steps: int = 5
    global_batch: int = 32        # weak scaling: the per-replica batch
    scaling: str = "strong"       # strong: global batch fixed; weak: per-replica batch fixed
    steps_per_execution: int = 1
    jit_compile: bool = False     # XLA for the training step (fit, train_on_batch, custom)
    keras: str = "keras3"         # or tf_keras (Keras 2): distbench.core.keras_flavour
    prefetch: str = "auto"        # the input pipeline's last prefetch: auto (AUTOTUNE), off, or N batches
    seed: int = 0                 # the data (synthetic draw, folder split) and, by default, training
    init_seed: int | None = None  # weight initialisation and shuffling; None: ``seed``
    data: str = "auto"
    devices: int = 2
    virtual_memory_mb: int = 2048  # each logical GPU's memory under `virtual` on a GPU
    workers: int = 2              # local worker processes for multi_worker and parameter_server (without TF_CONFIG)
    ps: int = 1                   # local parameter servers for parameter_server (without TF_CONFIG)
    eval_examples: int | None = 5000
    matmul_shape: tuple[int, int, int] = (10000, 100, 10000)
    matmul_repeats: int = 10
    deadline_s: float = 900.0
    connect_deadline_s: float = 180.0   # a TPU's connect and initialise, a PS cluster's connect; inside deadline_s
    # After a fit cell is measured: pairs of short fit calls with and without the timing
    # callback, for what the per-step timing costs fit (distbench.loops.fit); 0: not measured.
    timing_cost_pairs: int = 5
    intra_op_threads: int = 0     # 0: TensorFlow's default (one per core)
    inter_op_threads: int = 0
    # Time to target (distbench.trackers.target): train until METRIC=VALUE on the test examples,
    # evaluated every ``eval_every`` steps, at most ``max_steps`` steps; repeats are seeds.
    target: str | None = None
    eval_every: int = 25
    max_steps: int = 1000
    # How replicas reduce: MirroredStrategy's cross-device ops (auto: TensorFlow's choice,
    # nccl, hierarchical_copy, one_device), MultiWorkerMirrored's communication (auto: NCCL
    # on GPUs, else ring; ring; nccl).
    cross_device_ops: str = "auto"
    communication: str = "auto"
    # Classes from outside distbench the cell needs ("workload=path/to/file.py:Class"), loaded
    # by its worker before it runs (distbench.plugins).
    plugins: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        parts = [self.workload, self.strategy] + ([self.loop] if self.loop else [])
        if self.keras != "keras3":
            parts.append(self.keras)
        # Settings that change what is measured name the cell, so that no two different
        # configurations share an id (and a comparison): weak scaling trains on other
        # batch sizes, the accuracy guard's replicates on other initial weights.
        if self.scaling == "weak":
            parts.append("weak")
        if self.steps_per_execution != 1:
            parts.append(f"spe{self.steps_per_execution}")
        if self.jit_compile:
            parts.append("xla")
        if self.cross_device_ops != "auto":
            parts.append(self.cross_device_ops)
        if self.communication != "auto":
            parts.append(self.communication)
        if self.prefetch != "auto":
            parts.append(f"prefetch_{self.prefetch}")
        if self.target is not None:
            # A time-to-target cell's processes are its training seeds: one cell, not one per seed.
            parts.append(parse(self.target).label)
        elif self.init_seed is not None:
            parts.append(f"init{self.init_seed}")
        return "-".join(parts)

    @property
    def process_id(self) -> str:
        """The id of one process of the cell: a time-to-target cell's names its seed."""
        return f"{self.id}-seed{self.training_seed}" if self.is_target else self.id

    @property
    def label(self) -> str:
        """The loop and what else names the cell (``fit``, ``fit-spe50-xla``, ``fit-init1``);
        ``-`` for cells without a loop (matmul)."""
        prefix = f"{self.workload}-{self.strategy}-"
        return self.id[len(prefix):] if self.loop else "-"

    @property
    def is_replicate(self) -> bool:
        """An accuracy-guard replicate: the same cell with another training seed."""
        return self.init_seed is not None and self.target is None

    @property
    def is_target(self) -> bool:
        """A time-to-target cell (trains until ``target``; its repeats are training seeds)."""
        return self.target is not None

    @property
    def is_plain(self) -> bool:
        """Every speed setting at its default: one step per execution, no XLA, strong scaling."""
        return self.steps_per_execution == 1 and not self.jit_compile and self.scaling == "strong"

    @property
    def is_plain_fit(self) -> bool:
        """Plain ``fit`` under any strategy: what ``tune`` measures speed-ups against."""
        return self.loop == "fit" and self.is_plain and not self.is_replicate and self.target is None

    @property
    def is_reference(self) -> bool:
        """The accuracy guard's reference: the default strategy's plain Keras 3 ``fit``, any training seed."""
        return ((self.strategy, self.loop, self.keras) == ("default", "fit", "keras3") and self.is_plain
                and self.target is None)

    @property
    def comparable_key(self) -> tuple:
        """What must match for two cells' test metrics to be comparable (the guard's groups)."""
        return (self.workload, self.data, self.seed, self.epochs, self.steps_per_epoch, self.global_batch,
                self.eval_examples, self.profile)

    @property
    def scaling_key(self) -> tuple:
        """What must match between a multi-replica cell and its one-replica reference."""
        return (self.workload, self.loop or "", self.scaling, self.steps_per_execution, self.jit_compile, self.keras)

    @classmethod
    def for_profile(cls, profile: str, **fields) -> "CellSpec":
        if profile not in PROFILES:
            raise UserError(f"Unknown profile {profile!r}. Known: {', '.join(PROFILES)}.")
        return cls(profile=profile, **{**PROFILES[profile], **fields})

    @property
    def training_seed(self) -> int:
        """The seed of weight initialisation and shuffle order (the accuracy guard varies it)."""
        return self.seed if self.init_seed is None else self.init_seed

    def plain(self, strategy: str, loop: str) -> "CellSpec":
        """This cell's workload, data and length under ``strategy`` and ``loop``, with every
        speed or seed setting at its default (the accuracy guard's and overhead's reference)."""
        return self.replace(strategy=strategy, loop=loop, steps_per_execution=1, jit_compile=False,
                            scaling="strong", init_seed=None, target=None, keras="keras3")

    def replace(self, **changes) -> "CellSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["matmul_shape"] = list(self.matmul_shape)
        d["plugins"] = list(self.plugins)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CellSpec":
        """The spec a record's ``config`` describes; fields it lacks take their defaults,
        fields this version does not know (from older records) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "matmul_shape" in d:
            d["matmul_shape"] = tuple(d["matmul_shape"])
        if "plugins" in d:
            d["plugins"] = tuple(d["plugins"] or ())
        return cls(**d)

    def holds(self, steps_per_execution: int) -> bool:
        """Whether fit's calls of ``steps_per_execution`` steps leave a steady call."""
        return not calls_problem(self.epochs, self.steps_per_epoch, self.warmup_steps, steps_per_execution)

    def rounding(self, steps_per_execution: int) -> str:
        """:func:`rounding_problem` of this cell's epoch, under its Keras ('' under tf-keras,
        which runs an epoch's last call short)."""
        return rounding_problem(self.steps_per_epoch, steps_per_execution) if self.keras == "keras3" else ""

    def validate(self) -> None:
        """Raises UserError naming the first impossible setting and what is valid."""
        _at_least("epochs (--epochs)", self.epochs, 1)
        if self.steps_per_epoch is not None:
            _at_least("steps per epoch (--steps-per-epoch)", self.steps_per_epoch, 1)
        _at_least("warm-up steps (--warmup-steps)", self.warmup_steps, 0)
        _at_least("global batch (--global-batch)", self.global_batch, 1)
        _at_least("steps per execution (--steps-per-execution)", self.steps_per_execution, 1)
        _at_least("devices (--devices)", self.devices, 1)
        _at_least("virtual memory in MB (--virtual-memory-mb)", self.virtual_memory_mb, 64)
        _at_least("workers (--workers)", self.workers, 1)
        _at_least("parameter servers (--ps)", self.ps, 1)
        if self.init_seed is not None:
            _seed("init seed (--init-seed)", self.init_seed)
        _at_least("matmul repeats (--matmul-repeats)", self.matmul_repeats, 1)
        _at_least("timing cost pairs (--timing-cost-pairs)", self.timing_cost_pairs, 0)
        _threads("intra-op threads (--intra-op-threads)", self.intra_op_threads)
        _threads("inter-op threads (--inter-op-threads)", self.inter_op_threads)
        if self.eval_examples is not None:
            _at_least("evaluation examples (--eval-examples)", self.eval_examples, 1)
        _at_least("evaluation interval (--eval-every)", self.eval_every, 1)
        _seed("seed (--seed)", self.seed)
        if self.target is not None:   # --max-steps bounds a time-to-target cell only
            _at_least("max steps (--max-steps)", self.max_steps, self.warmup_steps + 2)
            parse(self.target)
        _positive_seconds("Deadline (--deadline)", self.deadline_s)
        _positive_seconds("Connect deadline (--connect-deadline)", self.connect_deadline_s)
        if self.cross_device_ops not in CROSS_DEVICE_OPS:
            raise UserError(f"Unknown cross-device ops {self.cross_device_ops!r}. Known: {', '.join(CROSS_DEVICE_OPS)}.")
        keras_flavour.check(self.keras)
        if self.prefetch not in ("auto", "off") and not (re.fullmatch(r"[0-9]+", str(self.prefetch)) and int(self.prefetch) >= 1):
            raise UserError(f"Bad prefetch {self.prefetch!r}: give auto (tf.data.AUTOTUNE), off, or a number of "
                            "batches >= 1.")
        if self.communication not in COMMUNICATIONS:
            raise UserError(f"Unknown communication {self.communication!r}. Known: {', '.join(COMMUNICATIONS)}.")
        if self.scaling not in SCALINGS:
            raise UserError(f"Unknown scaling {self.scaling!r}. Known: {', '.join(SCALINGS)}.")
        if self.scaling == "strong" and self.strategy == "virtual" and self.global_batch % self.devices:
            raise UserError(
                f"Global batch {self.global_batch} is not divisible by {self.devices} virtual "
                f"devices; use a global batch that is a multiple of {self.devices}."
            )
        self._validate_steps()

    def _validate_steps(self) -> None:
        """Enough training steps for a steady step (and, in fit's calls, a steady call), and
        time within the deadline for fit's timing-cost pairs after them."""
        if self.loop == "fit" and 2 * self.timing_cost_pairs * TIMING_COST_CALL_S >= self.deadline_s:
            raise UserError(f"--timing-cost-pairs {self.timing_cost_pairs} runs {2 * self.timing_cost_pairs} fit calls "
                            f"of at least {TIMING_COST_CALL_S:g} s each after the cell, in its worker, past its "
                            f"--deadline {self.deadline_s:g} s: give fewer pairs or a longer deadline.")
        if self.steps_per_epoch is not None:
            total = self.epochs * self.steps_per_epoch
            if total < self.warmup_steps + 2:
                raise UserError(
                    f"{total} training steps leave no steady-state step after the cold start and "
                    f"{self.warmup_steps} warm-up steps; run at least {self.warmup_steps + 2} steps."
                )
        # Every such fit cell failed after training. Elsewhere fit may run one step a call
        # (several replicas): its worker refuses before training (distbench.loops.fit).
        problem = (calls_problem(self.epochs, self.steps_per_epoch, self.warmup_steps, self.steps_per_execution)
                   or self.rounding(self.steps_per_execution))
        if self.loop == "fit" and self.strategy in ONE_REPLICA and self.target is None and problem:
            raise UserError(problem)
        if self.loop == "fit" and self.strategy in ONE_REPLICA and self.target is not None:
            problem = self.rounding(self.steps_per_execution) or evaluation_problem(
                self.eval_every, self.max_steps, self.steps_per_epoch, self.steps_per_execution)
            if problem:
                raise UserError(problem)
        if self.target is not None:
            self._first_evaluation_after_a_steady_step()


    def _first_evaluation_after_a_steady_step(self) -> None:
        """A target reached at the first evaluation before any steady step, or a budget that
        ends before one, left a time to target and no step time: the cell failed after training.
        fit's calls are its units where they are sure to be (one replica); elsewhere its worker
        checks the calls it makes (:mod:`distbench.loops.fit`)."""
        unit = max(self.steps_per_execution, 1) if self.loop == "fit" and self.strategy in ONE_REPLICA else 1
        problem = steady_before_evaluation(self.eval_every, self.max_steps, self.warmup_steps, unit)
        if problem:
            raise UserError(problem)
        if self.eval_every >= self.max_steps:   # read once, as the budget ran out: its time was the budget's
            raise UserError(f"--eval-every {self.eval_every} is not below --max-steps {self.max_steps}: the target "
                            "would be evaluated only when the step budget ends, and its time to target would be the "
                            "budget's; give an --eval-every below --max-steps.")


def _threads(what: str, threads: int) -> None:
    """A TensorFlow pool of ``threads`` (0: TensorFlow's default) that this machine can
    create and use (:mod:`distbench.core.cpus`)."""
    _at_least(what, threads, 0)
    most = cpus.max_threads()
    if threads > most:
        raise UserError(f"{what.capitalize()} must be at most {most} ({cpus.THREADS_PER_CPU} per usable CPU, "
                        f"{cpus.usable_cpus()} here: more only wait for a CPU, and far more make TensorFlow abort "
                        f"creating them); received {threads}.")


MAX_SECONDS = 30 * 24 * 3600.0   # a month; Python's waits overflow past ~9.2e9 s (a traceback mid-cell)


def _positive_seconds(what: str, value) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise UserError(f"{what} must be positive seconds, at most {MAX_SECONDS:g} (30 days); received {value!r}.")


# NumPy's seeds (keras.utils.set_random_seed) stop below 2**32; the guard's seeds and a
# comparison's pairs add to the one given, so it stops well below that.
MAX_SEED = 2**31 - 1


def _seed(what: str, value: int) -> None:
    _at_least(what, value, 0)
    if value > MAX_SEED:
        raise UserError(f"{what.capitalize()} must be an integer from 0 to {MAX_SEED}; received {value!r}.")


# Each fit call of the timing-cost pairs runs about this long (distbench.loops.fit), after the
# cell and inside its deadline.
TIMING_COST_CALL_S = 0.3


def _at_least(what: str, value: int, low: int) -> None:
    if not isinstance(value, int) or value < low:
        raise UserError(f"{what.capitalize()} must be an integer >= {low}; received {value!r}.")
