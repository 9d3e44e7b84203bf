"""The pruning methods, by name (docs/method.md says what each one is, precisely).

A pruner is a dataclass of its options (defaults as in docs/method.md) whose ``prune(ctx)`` leaves
``ctx.trainee`` with its final mask, having trained as many epochs as the method needs to choose
it, and returns what the method reports (``extra``). Training then continues to the full epochs
in the one shared loop.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from . import masks, options, seeds
from .errors import DivergedError, InitpruneError
from .options import OptionError, like, option
from .registry import Registry
from .train import Settings, Trainee, Trainer

# names a method's option cannot take: they are the run's own (fit's parameters, RunSpec's fields,
# the command line's ``run`` flags) or the training settings'; the notebooks' parameters are the
# lab's to keep clear (lab/executions.py, ``check_options``)
RESERVED = {"method", "dataset", "arch", "sparsity", "epochs", "seed", "ablation", "options", "training",
            "model", "train", "val", "test", "device", "augment", "data_root", "out", "save_model",
            "tracking_uri", "no_tracking", "command", "threads", "task", "target",
            *(f.name for f in dataclasses.fields(Settings))}


def _check(name: str, cls) -> None:
    """A pruner is a Pruner dataclass whose options the command line, profiles and MLflow can carry."""
    if not (isinstance(cls, type) and issubclass(cls, Pruner) and dataclasses.is_dataclass(cls)):
        raise InitpruneError(f"method '{name}': register a @dataclass subclass of initprune.pruners.Pruner")
    try:
        declared = cls.declared()
    except InitpruneError:
        raise
    except Exception as err:  # its own check of a default that raises
        raise InitpruneError(f"method '{name}' ({cls.__module__}): checking its options raised {_first_line(err)}; "
                             "fix its check") from None
    taken = sorted(RESERVED & {o.name for o in declared})
    if taken:
        raise InitpruneError(f"method '{name}' ({cls.__module__}): option(s) {', '.join(taken)} have the name of "
                             "one of the run's own settings; rename them")
    if cls.color is not None and not cls.__module__.startswith("initprune."):  # a plugin's (the built-ins': a test)
        from matplotlib.colors import is_color_like

        if not is_color_like(cls.color):
            raise InitpruneError(f"method '{name}' ({cls.__module__}): color {cls.color!r} is not a matplotlib colour; "
                                 "give a name ('tab:red'), a hex code ('#1f77b4') or None")


PRUNERS: Registry = Registry("method", check=_check)


@dataclass
class Context:
    trainer: Trainer
    trainee: Trainee
    generator: torch.Generator  # every random draw of a pruner comes from here
    invert: bool = False  # the invert ablation: keep what the method would remove (its worst choices)


@dataclass(frozen=True)
class Role:
    """A contrast of the verdict (docs/method.md, "The verdict"), declared by a method of the
    registry: ``method`` (a label per the values of its line options) against ``rival``, over the
    tested sparsities of each cell and regime. ``claim``: the paper's claim it tests (a primary
    contrast; the claim's contrasts are one family, said by ``text``); "" a secondary family of
    its own per label of ``method``. ``same``: the rival under the same values of the method's
    line options (combined (cubic) against dissipating (cubic)). ``variant``: the method under
    these option values, against itself at their defaults (movement: absolute against relative).
    ``matched``: the rival trained as long as the method spends in all (``trained_epochs``)."""

    method: str
    rival: str
    claim: str = ""
    text: str = ""
    same: bool = False
    variant: tuple[tuple[str, object], ...] = ()
    matched: bool = False


def roles() -> list[Role]:
    """Every contrast the registered methods declare (a plugin's included), in registry order:
    each method's own (``Pruner.roles``: declared on its class, never inherited from a parent)."""
    return [r for m in PRUNERS.names() for r in vars(PRUNERS[m]).get("roles", ())]


SCOPES = masks.SCOPES
AT_LEAST_1 = dict(check=lambda v: v >= 1, must="an integer of at least 1")


@dataclass
class Pruner:
    """A pruning method: its options are its dataclass fields (``options.option``), declared
    once; ``prune`` chooses the mask. Register a subclass with ``@PRUNERS.register(name)``."""

    sparsity: float
    fixed_sparsity: ClassVar[float | None] = None  # dense only accepts 0
    # what the method computes: raised when that changes, so that a store never serves old
    # results as new ones (spec.RunSpec.identity always names it)
    version: ClassVar[int] = 1
    invertible: ClassVar[bool] = False  # has a meaning for "keep the worst" (the invert ablation)
    # how figures and claims treat it: "paper" (the paper's methods and its random baseline),
    # "baseline" (established pruning at initialization: the rivals beyond the paper),
    # "control" (a paper method's schedule with another criterion: what isolates the criterion) or
    # "reference" (dense, post-training: not pruning at initialization)
    family: ClassVar[str] = "baseline"
    color: ClassVar[str | None] = None  # matplotlib colour; None: one of its own
    # options whose every value is a method of its own in figures, tables and claims, never the
    # best of them picked after the fact (dissipating's schedule)
    lines: ClassVar[tuple[str, ...]] = ()
    # the contrasts the verdict draws that this method declares (``Role``; its own, never
    # inherited: ``roles``); its figures are attached to its entry by the report layer
    # (``PRUNERS.attach("figures", name)``, as initprune.report.figures.contributes does)
    roles: ClassVar[tuple[Role, ...]] = ()
    # its allocation in the free regime, where it places weights at random: {scope option: value};
    # every scope option not named ranks globally
    free: ClassVar[dict[str, str]] = {}

    def __post_init__(self):
        if not isinstance(self.sparsity, (int, float)) or not 0 <= self.sparsity < 1:
            raise InitpruneError(
                f"sparsity must be in [0, 1) (the fraction of weights removed), got {self.sparsity}"
            )
        if self.fixed_sparsity is not None and self.sparsity != self.fixed_sparsity:
            raise OptionError("sparsity", f"must be {self.fixed_sparsity:g}: method '{self.name}' keeps every weight")
        try:
            options.validate(self, skip=("sparsity",))
        except InitpruneError:
            raise
        except Exception as err:  # a plugin's own check of a value that raises: one line naming it
            raise InitpruneError(f"{self._where}: checking its options raised {_first_line(err)}; "
                                 "fix its check") from None

    @property
    def name(self) -> str:
        return next(n for n in PRUNERS.names() if PRUNERS[n] is type(self))

    @property
    def _where(self) -> str:
        """The method as errors name it: its registered name and its module."""
        name = next((n for n in PRUNERS.names() if PRUNERS[n] is type(self)), type(self).__name__)
        return f"method '{name}' ({type(self).__module__})"

    @property
    def sparsity_is_outcome(self) -> bool:
        """True where the method's rule decides the sparsity and the target only bounds it (a
        threshold): its mask may stay under the target. Else the target is met up to rounding."""
        return False

    @property
    def min_epochs(self) -> int:
        """Epochs the method trains while choosing its mask."""
        return 0

    def trained_epochs(self, epochs: int) -> float:
        """Epochs of training a run of ``epochs`` costs in all, every copy of the model counted
        (K-starts' candidates): what a sweep's time estimate multiplies."""
        return float(epochs)

    @property
    def candidates(self) -> int:
        """Copies of the model the method trains beside the run's own, all held at once
        (what memory.check multiplies)."""
        return 0

    @classmethod
    def declared(cls) -> tuple[options.Option, ...]:
        """The options this method takes, as declared (everything but the sparsity)."""
        return options.declared(cls, skip=("sparsity",))

    def options(self) -> dict:
        """This pruner's options and their values."""
        return {o.name: getattr(self, o.name) for o in self.declared()}

    def prune(self, ctx: Context) -> dict:
        """Leave ``ctx.trainee`` with the final mask; return what the method reports (``extra``)."""
        raise NotImplementedError

    def metrics(self, extra: dict) -> list[tuple[str, float, int]]:
        """What of the method's report goes to MLflow as metrics: (name, value, step)."""
        return []


def _first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"


def choose(pruner: Pruner, ctx: Context) -> dict:
    """``pruner.prune(ctx)``, held to its contract: the trainee's mask one boolean tensor per
    prunable weight, of its shape, no layer emptied, the removed weights zero and the sparsity
    promised (``sparsity_is_outcome``: at most it); the report a dict that ``metrics`` reads,
    returned JSON-safe (numpy and torch numbers as Python's) before anything logs or writes it.
    Else one line naming the method."""
    t = ctx.trainee
    try:
        extra = pruner.prune(ctx)
    except (InitpruneError, DivergedError):
        raise
    except Exception:
        # a mask set_mask could not apply (a layer missing, a shape it cannot multiply): say which;
        # anything else is the method's own fault, its traceback kept
        wrong = masks.problem(t.mask, t.weights)
        if wrong is None:
            raise
        raise InitpruneError(f"{pruner._where}: {wrong}") from None
    wrong = masks.problem(t.mask, t.weights, pruner.sparsity, pruner.sparsity_is_outcome)
    if wrong is not None:
        raise InitpruneError(f"{pruner._where}: {wrong}")
    if not isinstance(extra, dict):
        raise InitpruneError(f"{pruner._where}: prune returned {type(extra).__name__}, not a dict of what the method "
                             "reports; return {} when it reports nothing")
    extra = _plain(extra, pruner, "report")
    try:
        for name, value, step in pruner.metrics(extra):
            float(value), int(step), str(name)
    except Exception as err:
        raise InitpruneError(f"{pruner._where}: its metrics(report) raised {_first_line(err)}; it must return "
                             "(name, number, step) triples of what prune reported") from None
    return extra


def _plain(value, pruner: Pruner, where: str):
    """``value`` with numpy scalars and arrays and tensors as Python numbers and lists."""
    if isinstance(value, dict):
        return {_plain(k, pruner, where) if not isinstance(k, str) else k: _plain(v, pruner, f"{where}[{k!r}]")
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, pruner, f"{where}[{i}]") for i, v in enumerate(value)]
    if torch.is_tensor(value):
        return value.detach().cpu().tolist()
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    import numpy as np

    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise InitpruneError(f"{pruner._where}: its {where} is a {type(value).__name__}; report numbers, strings, "
                         "lists and dicts")


def make(method: str, sparsity: float, **given) -> Pruner:
    """The pruner ``method`` with options ``given``; an option it does not take is a clear error."""
    cls = PRUNERS[method]
    names = [o.name for o in cls.declared()]
    for key in given:
        if key not in names:
            takes = ", ".join(names) if names else "no options"
            raise OptionError(key, f"does not apply to method '{method}' (its options: {takes})")
    return cls(sparsity=sparsity, **given)


def option_names(method: str) -> list[str]:
    return [o.name for o in PRUNERS[method].declared()]


def label(method: str, options: dict | None = None) -> str:
    """The method with the values of its line options, a method of its own in figures, tables,
    claims and run names: "dissipating (cubic)". A name the registry does not know is itself."""
    if method not in PRUNERS:
        return method
    cls = PRUNERS[method]
    values = {**{o.name: o.default for o in cls.declared()}, **(options or {})}
    parts = [str(values[k]) for k in cls.lines if k in values]
    return f"{method} ({', '.join(parts)})" if parts else method


def of_family(family: str) -> list[str]:
    """The registered methods of a family ("paper", "baseline", "control", "reference"), a plugin's
    included."""
    return [m for m in PRUNERS.names() if PRUNERS[m].family == family]


@PRUNERS.register("dense")
@dataclass
class Dense(Pruner):
    """No pruning: the ceiling every method is measured against."""

    family: ClassVar[str] = "reference"
    color: ClassVar[str | None] = "black"
    fixed_sparsity: ClassVar[float | None] = 0.0

    def prune(self, ctx: Context) -> dict:
        return {}


@PRUNERS.register("random")
@dataclass
class Random(Pruner):
    """The paper's baseline: a uniformly random subset of each layer (layerwise), of each layer
    at its ERK count (erk), or of all weights in one uniform draw (global)."""

    family: ClassVar[str] = "paper"
    color: ClassVar[str | None] = "tab:gray"
    free: ClassVar[dict[str, str]] = {"scope": "erk"}
    scope: str = option("layerwise", "layerwise: every layer at the sparsity; erk: ERK counts per layer; "
                        "global: one uniform draw over all weights", choices=SCOPES)

    def prune(self, ctx: Context) -> dict:
        scores = masks.random_scores(ctx.trainee.model, ctx.generator)
        ctx.trainee.set_mask(masks.select(scores, self.sparsity, self.scope))
        return {}


FITNESS = ("magnitude", "gradient", "both")
SELECTION = ("full", "halving")


@PRUNERS.register("kstarts")
@dataclass
class KStarts(Pruner):
    """k random masks, each trained for a warm-up; the fittest goes on (no rewinding). The
    candidates share their layer counts (scope: every layer at the sparsity, ERK counts, or
    global: one uniform draw over all weights, whose counts then differ between candidates)."""

    family: ClassVar[str] = "paper"
    color: ClassVar[str | None] = "tab:blue"
    invertible: ClassVar[bool] = True
    free: ClassVar[dict[str, str]] = {"scope": "erk"}
    roles: ClassVar[tuple[Role, ...]] = (
        Role("kstarts", "random", claim="2", text="K-starts picks better masks than random"),
        Role("kstarts", "random", text="random at K-starts' cost", matched=True))  # claim 2, equal training cost

    k: int = option(8, "random masks, each trained for the warm-up", **AT_LEAST_1)
    fitness: str = option("both", "how the fittest is judged", choices=FITNESS)
    warmup_epochs: int = option(1, "epochs each candidate trains before the choice", **AT_LEAST_1)
    selection: str = option("full", "full: every candidate trains the warm-up; halving: successive halving",
                            choices=SELECTION)
    analysis: bool = option(False, "also train every candidate to the end: is the fittest the best?")
    scope: str = option("layerwise", "the candidates' layer allocation: layerwise, erk or global",
                        choices=SCOPES, neutral="layerwise")

    @property
    def min_epochs(self) -> int:
        return self.warmup_epochs

    def trained_epochs(self, epochs: int) -> float:
        """The run's epochs, plus the warm-up of every candidate but the winner (under halving, the
        slices the candidates alive in each round train), plus, in analysis mode, the losers
        trained to the end."""
        if self.selection == "full":
            extra = (self.k - 1) * self.warmup_epochs
        else:
            ends = self._halving(self.warmup_epochs)
            alive, spent, before = self.k, 0.0, 0.0
            for end in ends:
                spent += alive * (end - before)
                alive, before = max(1, math.ceil(alive / 2)), end
            extra = spent - self.warmup_epochs
        if self.analysis:
            extra += (self.k - 1) * (epochs - self.warmup_epochs)
        return epochs + extra

    @property
    def candidates(self) -> int:
        return self.k  # all built before the warm-up; with analysis, all kept to the end

    def _halving(self, warmup: float) -> list[float]:
        """Successive halving's round ends over a warm-up of ``warmup`` (epochs or steps): slices
        t0, 2 t0, 4 t0, ... summing to it, one round per halving of the k candidates."""
        rounds = max(1, math.ceil(math.log2(self.k)))
        return [warmup * (2 ** (r + 1) - 1) / (2**rounds - 1) for r in range(rounds)]

    def prune(self, ctx: Context) -> dict:
        base = ctx.trainee
        settings = ctx.trainer.settings
        candidates = []
        for _ in range(self.k):  # same layer counts, different positions
            mask = masks.select(masks.random_scores(base.model, ctx.generator), self.sparsity, self.scope)
            candidates.append(base.clone(settings, mask))
        sinks = [[torch.zeros_like(w) for w in c.prunable] for c in candidates]
        budget = self.warmup_epochs * ctx.trainer.steps_per_epoch
        report: dict[int, dict] = {}
        alive = list(range(self.k))
        if self.selection == "full":
            ends = [budget]
        else:
            ends = [round(end) for end in self._halving(budget)]
        for end in ends:
            ctx.trainer.together([candidates[i] for i in alive], end - candidates[alive[0]].steps,
                                 [sinks[i] for i in alive])
            scores = self._fitness([candidates[i] for i in alive], [sinks[i] for i in alive])
            for i, score in zip(alive, scores):
                report[i] = {"index": i, **score, "epochs": candidates[i].steps / ctx.trainer.steps_per_epoch}
            sign = 1 if ctx.invert else -1  # invert ablation: the least fit goes on
            ranked = sorted(alive, key=lambda i: (sign * report[i]["fitness"], i))
            alive = sorted(ranked[: max(1, math.ceil(len(alive) / 2))] if self.selection == "halving"
                           else ranked[:1])
            if not self.analysis:
                for i in set(range(self.k)) - set(alive):  # free what lost
                    candidates[i] = sinks[i] = None
        winner = alive[0]
        base.adopt(candidates[winner])
        spent = sum(r["epochs"] for r in report.values())
        out = {
            "candidates": [report[i] for i in range(self.k)],
            "winner": winner,
            "extra_cost_epochs": spent - self.warmup_epochs,
        }
        if self.analysis:  # analysis, not the method: its training is not in the run's cost
            paused, ctx.trainer.cost.paused = ctx.trainer.cost.paused, True
            try:
                out["rank_correlation"] = self._train_all(ctx, candidates, out["candidates"])
            finally:
                ctx.trainer.cost.paused = paused
        return out

    def metrics(self, extra: dict) -> list[tuple[str, float, int]]:
        return [("kstarts.winner", extra["winner"], 0), ("kstarts.extra_cost_epochs", extra["extra_cost_epochs"], 0),
                *[("kstarts.fitness", c["fitness"], c["index"]) for c in extra["candidates"]]]

    def _train_all(self, ctx: Context, candidates: list[Trainee], report: list[dict]) -> float | None:
        """Analysis mode: every candidate trained to the end (the winner as a copy, so the run
        itself is untouched); returns the Spearman correlation of fitness with the final test metric
        (accuracy; reconstruction error, where a good fitness correlates negatively)."""
        from scipy.stats import spearmanr

        metric = ctx.trainer.task.test_metric
        for candidate, row in zip(candidates, report):
            ctx.trainer.advance(candidate, ctx.trainer.epochs * ctx.trainer.steps_per_epoch - candidate.steps)
            row[f"final_{metric}"] = candidate.history[-1][metric]
        fitness, final = [r["fitness"] for r in report], [r[f"final_{metric}"] for r in report]
        if len(report) < 3 or len(set(fitness)) < 2 or len(set(final)) < 2:
            return None  # undefined
        return float(spearmanr(fitness, final)[0])

    def _fitness(self, trainees: list[Trainee], sinks: list[list[Tensor]]) -> list[dict]:
        """Each term a mean over a layer's kept weights, summed over layers (docs/method.md)."""
        mags, grads = [], []
        for t, sink in zip(trainees, sinks):
            kept = [m.sum() for m in t.mask_values]
            mags.append(float(sum((w.detach().abs() * m).sum() / n
                                  for w, m, n in zip(t.prunable, t.mask_values, kept))))
            grads.append(float(sum((g * m).sum() / n for g, m, n in zip(sink, t.mask_values, kept))))
        top_m, top_g = max(mags) or 1.0, max(grads) or 1.0
        out = []
        for m, g in zip(mags, grads):
            fitness = {"magnitude": m, "gradient": g, "both": (m / top_m) * (g / top_g)}[self.fitness]
            out.append({"fitness": fitness, "magnitude": m, "gradient": g})
        return out


SCHEDULES = ("linear", "geometric", "cubic")


def scheduled(start: float, end: float, epoch: int, epochs: int, schedule: str) -> float:
    """Sparsity after pruning epoch ``epoch`` of ``epochs``: ``linear`` (evenly in sparsity),
    ``geometric`` (evenly in log density: the same fraction of the kept weights goes each epoch)
    or ``cubic`` (Zhu & Gupta 2017: fast first, slow last)."""
    frac = epoch / epochs
    if schedule == "linear":
        return start + (end - start) * frac
    if schedule == "geometric":
        return 1 - (1 - start) * ((1 - end) / (1 - start)) ** frac
    return end + (start - end) * (1 - frac) ** 3


MOVEMENTS = ("relative", "absolute")


@PRUNERS.register("dissipating")
@dataclass
class Dissipating(Pruner):
    """Prune the weights that moved least from θ0 during the first epochs: relative to |θ0|, or
    in absolute terms with ``movement`` absolute.

    ``scope`` erk: each pruning epoch's target sparsity is allocated over the layers by ERK
    (``masks.erk_counts`` at that epoch's sparsity, within the current mask: a layer that holds
    fewer weights than its ERK count keeps them all and the others take up the difference), the
    smallest movements going within each layer. With the threshold ``tau``, erk plays the part
    layerwise does: every weight with r < tau goes, but no layer falls below its ERK count at
    the target sparsity.

    The schedule is shared with the criterion controls (gradual random, gradual magnitude), which
    replace only ``criterion``."""

    family: ClassVar[str] = "paper"
    color: ClassVar[str | None] = "tab:orange"
    lines: ClassVar[tuple[str, ...]] = ("schedule",)
    invertible: ClassVar[bool] = True
    roles: ClassVar[tuple[Role, ...]] = (
        *(Role("dissipating", rival, claim="3", text="dissipating gradients preserves accuracy best")
          for rival in ("random", "kstarts")),
        Role("dissipating", "dissipating", variant=(("movement", "absolute"),)))  # the criterion's reading

    prune_epochs: int = option(3, "E_d: the epochs over which the sparsity rises to the target", **AT_LEAST_1)
    schedule: str = option("linear", "how the sparsity rises over the pruning epochs", choices=SCHEDULES)
    tau: float | None = option(None, "threshold variant: prune every weight with r < tau (default: target mode)",
                               check=lambda v: v > 0, must="positive (a movement)")
    scope: str = option("layerwise", "layerwise, erk (ERK counts per layer) or global ranking of the movement",
                        choices=SCOPES)
    eps: float = option(1e-8, "added to |θ0| in the relative movement", check=lambda v: v > 0, must="positive")
    movement: str = option("relative", "relative: r = |θ_e - θ0| / (|θ0| + eps), the paper's reading; "
                           "absolute: r = |θ_e - θ0|", choices=MOVEMENTS, neutral="relative")

    @property
    def min_epochs(self) -> int:
        return self.prune_epochs

    @property
    def sparsity_is_outcome(self) -> bool:
        return self.tau is not None  # the threshold variant prunes r < tau, capped at the target

    def moved(self, t: Trainee) -> dict[str, Tensor]:
        """Every weight's movement r from θ0, relative or absolute as ``movement`` says."""
        if self.movement == "absolute":
            return {n: (w.detach() - t.init[n]).abs() for n, w in t.weights.items()}
        return {n: (w.detach() - t.init[n]).abs() / (t.init[n].abs() + self.eps) for n, w in t.weights.items()}

    def criterion(self, t: Trainee, ctx: Context, epoch: int) -> dict[str, Tensor]:
        """Every weight's score at the end of pruning epoch ``epoch`` (1 to E_d): the kept weights
        scored lowest go. Dissipating's is the movement; a control replaces only this."""
        return self.moved(t)

    def prune(self, ctx: Context) -> dict:
        t = ctx.trainee
        start = masks.sparsity(t.mask)
        numels = {n: m.numel() for n, m in t.mask.items()}
        if self.scope == "layerwise":
            final = 1 - sum(masks.n_keep(n, self.sparsity) for n in numels.values()) / sum(numels.values())
        elif self.scope == "erk":
            kept = masks.erk_counts({n: tuple(m.shape) for n, m in t.mask.items()}, self.sparsity,
                                    {n: int(m.sum()) for n, m in t.mask.items()})
            final = 1 - sum(kept.values()) / sum(numels.values())
        else:
            final = 1 - masks.n_keep(sum(numels.values()), self.sparsity) / sum(numels.values())
        per_epoch, hists = [], []

        def prune(t: Trainee) -> None:
            epoch = len(per_epoch) + 1
            hists.append(_log_histogram(self.moved(t), t.mask))
            scores = self.criterion(t, ctx, epoch)
            if ctx.invert:  # invert ablation: prune the highest scores (dissipating: the weights that moved most)
                scores = {n: -r for n, r in scores.items()}
            if self.tau is None:
                target = scheduled(start, self.sparsity, epoch, self.prune_epochs, self.schedule)
                mask = masks.select(scores, target, self.scope, within=t.mask)
            else:
                mask = masks.select(scores, self.sparsity, self.scope, within=t.mask,
                                    keep=self._threshold_keep(scores, t.mask, ctx.invert))
            t.set_mask(mask)
            per_epoch.append(masks.sparsity(mask))

        ctx.trainer.run(t, self.prune_epochs, on_epoch_end=prune)
        reached = next((e + 1 for e, s in enumerate(per_epoch) if s >= final - 1e-12), None)
        return {"sparsity_per_epoch": per_epoch, "target_reached_epoch": reached,
                "start_sparsity": start, "movement_histograms": hists,
                "kept_by_quartile": kept_by_quartile(t.mask, t.init)}

    def metrics(self, extra: dict) -> list[tuple[str, float, int]]:
        return self.sparsity_metrics(extra) + quartile_metrics(extra["kept_by_quartile"])

    def sparsity_metrics(self, extra: dict) -> list[tuple[str, float, int]]:
        """The sparsity after each pruning epoch, step the epoch."""
        return [(f"{self.name}.sparsity", s, e + 1) for e, s in enumerate(extra["sparsity_per_epoch"])]

    def _threshold_keep(self, movement, mask, invert: bool):
        """Kept counts when every weight with r < τ goes (inverted: r > τ), capped at the target."""
        tau = -self.tau if invert else self.tau
        above = {n: int(((r >= tau) & mask[n]).sum()) for n, r in movement.items()}
        if self.scope == "layerwise":
            return {n: max(above[n], masks.n_keep(mask[n].numel(), self.sparsity)) for n in above}
        if self.scope == "erk":
            floor = masks.erk_counts({n: tuple(m.shape) for n, m in mask.items()}, self.sparsity,
                                     {n: int(m.sum()) for n, m in mask.items()})
            return {n: max(above[n], floor[n]) for n in above}
        total = sum(m.numel() for m in mask.values())
        return max(sum(above.values()), masks.n_keep(total, self.sparsity))


def _log_histogram(movement: dict[str, Tensor], mask: masks.Mask, bins: int = 40) -> dict:
    """Histogram of log10 movement over the kept weights: what the pruning cuts into."""
    r = torch.cat([movement[n][mask[n]].flatten() for n in movement]).float().cpu()
    logr = torch.log10(r.clamp_min(1e-8))
    counts = torch.histc(logr, bins=bins, min=-8.0, max=2.0)
    return {"log10_min": -8.0, "log10_max": 2.0, "counts": [int(c) for c in counts]}


QUARTERS = 4


def kept_by_quartile(mask: masks.Mask, init: dict[str, Tensor]) -> dict:
    """The kept fraction of each quartile of |θ0|, smallest first, at ``mask``: ``layers`` per
    layer (its weights ranked by |θ0|, ties by position, and cut into four quarters as equal as
    the count allows) and ``weighted`` over all layers, each layer's fraction weighted by the
    weights it has in that quartile (a quarter of its weights, up to rounding): the kept weights
    of that quartile of every layer over all the weights there. A quartile a layer is too small
    to fill is None (a layer of 3 weights has no fourth)."""
    layers, kept, held = {}, [0] * QUARTERS, [0] * QUARTERS
    for name, m in mask.items():
        order = torch.argsort(init[name].detach().abs().flatten().cpu(), stable=True)
        quarter = torch.empty_like(order)
        quarter[order] = torch.arange(order.numel()) * QUARTERS // order.numel()
        flat = m.detach().flatten().cpu()
        counts = [(int(flat[quarter == q].sum()), int((quarter == q).sum())) for q in range(QUARTERS)]
        layers[name] = [k / n if n else None for k, n in counts]
        for q, (k, n) in enumerate(counts):
            kept[q], held[q] = kept[q] + k, held[q] + n
    return {"layers": layers, "weighted": [k / n if n else None for k, n in zip(kept, held)]}


def quartile_metrics(report: dict) -> list[tuple[str, float, int]]:
    """The pooled kept fraction per |θ0| quartile, step 1 the smallest |θ0| (an empty one left out)."""
    return [("kept_by_quartile", f, q + 1) for q, f in enumerate(report["weighted"]) if f is not None]


@PRUNERS.register("combined")
@dataclass
class Combined(Pruner):
    """K-starts to s_k, then dissipating gradients from s_k to s, movement measured from θ0.
    kstarts_scope is the K-starts stage's layer allocation, scope the dissipating stage's."""

    family: ClassVar[str] = "paper"
    color: ClassVar[str | None] = "tab:green"
    lines: ClassVar[tuple[str, ...]] = ("schedule",)
    invertible: ClassVar[bool] = True
    free: ClassVar[dict[str, str]] = {"kstarts_scope": "erk", "scope": "global"}
    roles: ClassVar[tuple[Role, ...]] = tuple(
        Role("combined", rival, claim="4", text="the combination beats each of them and random", same=same)
        for rival, same in (("kstarts", False), ("dissipating", True), ("random", False)))
    # the stage after K-starts, given the options of its own this method declares; its report is
    # filed under its registered name ("dissipating")
    stage: ClassVar[type[Dissipating]] = Dissipating

    kstarts_sparsity: float | None = option(None, "s_k, where K-starts hands over (default: 1 - sqrt(1 - s))")
    k: int = like(KStarts, "k")
    fitness: str = like(KStarts, "fitness")
    warmup_epochs: int = like(KStarts, "warmup_epochs")
    selection: str = like(KStarts, "selection")
    prune_epochs: int = like(Dissipating, "prune_epochs")
    schedule: str = like(Dissipating, "schedule")
    tau: float | None = like(Dissipating, "tau")
    scope: str = like(Dissipating, "scope")
    kstarts_scope: str = option("layerwise", "the K-starts stage's layer allocation: layerwise, erk or global",
                                choices=SCOPES, neutral="layerwise")
    movement: str = like(Dissipating, "movement")

    def __post_init__(self):
        super().__post_init__()
        if self.kstarts_sparsity is not None and not 0 <= self.kstarts_sparsity <= self.sparsity:
            raise OptionError("kstarts_sparsity", f"must be in [0, sparsity={self.sparsity}], "
                              f"got {self.kstarts_sparsity}")
        self._kstarts = KStarts(self.split, self.k, self.fitness, self.warmup_epochs, self.selection,
                                scope=self.kstarts_scope)
        own = {o.name for o in self.declared()}
        self._dissipating = self.stage(self.sparsity, **{o.name: getattr(self, o.name)
                                                         for o in self.stage.declared() if o.name in own})

    @property
    def split(self) -> float:
        if self.kstarts_sparsity is not None:
            return self.kstarts_sparsity
        return 1 - math.sqrt(1 - self.sparsity)

    @property
    def min_epochs(self) -> int:
        return self.warmup_epochs + self.prune_epochs

    def trained_epochs(self, epochs: int) -> float:
        return self._kstarts.trained_epochs(epochs)

    @property
    def sparsity_is_outcome(self) -> bool:
        return self._dissipating.sparsity_is_outcome

    @property
    def candidates(self) -> int:
        return self._kstarts.candidates

    def prune(self, ctx: Context) -> dict:
        kstarts = self._kstarts.prune(ctx)
        stage = self._dissipating.prune(ctx)
        return {"kstarts_sparsity": self.split, "kstarts": kstarts, self._dissipating.name: stage,
                "kept_by_quartile": stage.pop("kept_by_quartile")}  # the final mask's

    def metrics(self, extra: dict) -> list[tuple[str, float, int]]:
        stage = self._dissipating
        return (self._kstarts.metrics(extra["kstarts"]) + stage.sparsity_metrics(extra[stage.name])
                + quartile_metrics(extra["kept_by_quartile"]))


# ---- criterion controls (docs/method.md, "Criterion controls") -------------------------------------
# dissipating's schedule, scope and starting mask with another criterion: what isolates the criterion


def fixed(cls: type, name: str):
    """``cls``'s option ``name`` held at its default and taken by no one: a control's field that
    its parent's code reads but whose value would not change what the control computes."""
    default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
    return dataclasses.field(default=default, init=False)


@PRUNERS.register("gradual_random")
@dataclass
class GradualRandom(Dissipating):
    """Dissipating's schedule with no criterion: each pruning epoch removes a uniformly random
    subset of the kept weights (of each layer, or of all of them under global scope), drawn from
    a stream of its own per epoch, derived from the run's seed. No threshold: nothing to compare."""

    family: ClassVar[str] = "control"
    color: ClassVar[str | None] = "tab:red"
    invertible: ClassVar[bool] = False  # the worst random choice is a random choice
    roles: ClassVar[tuple[Role, ...]] = (Role("dissipating", "gradual_random", same=True),)  # the criterion alone

    tau: float | None = fixed(Dissipating, "tau")
    eps: float = fixed(Dissipating, "eps")  # the movement histograms' only
    movement: str = fixed(Dissipating, "movement")

    def criterion(self, t: Trainee, ctx: Context, epoch: int) -> dict[str, Tensor]:
        # the masks stream's seed names the run: the draws never touch that stream, nor the global one
        return masks.random_scores(t.model, seeds.generator(ctx.generator.initial_seed(), f"gradual_random:{epoch}"))


@PRUNERS.register("gradual_magnitude")
@dataclass
class GradualMagnitude(Dissipating):
    """Dissipating's schedule with magnitude as the criterion (Zhu & Gupta 2017): each pruning
    epoch removes the kept weights of smallest |θ_e|."""

    family: ClassVar[str] = "control"
    color: ClassVar[str | None] = "darkgoldenrod"
    invertible: ClassVar[bool] = True  # inverted: the largest |θ_e| go
    roles: ClassVar[tuple[Role, ...]] = (Role("dissipating", "gradual_magnitude", same=True),)

    tau: float | None = fixed(Dissipating, "tau")
    eps: float = fixed(Dissipating, "eps")
    movement: str = fixed(Dissipating, "movement")

    def criterion(self, t: Trainee, ctx: Context, epoch: int) -> dict[str, Tensor]:
        return {n: w.detach().abs() for n, w in t.weights.items()}


@PRUNERS.register("kstarts_gradual_random")
@dataclass
class KStartsGradualRandom(Combined):
    """Combined's control: K-starts to s_k (the same winner as combined's for the same seed),
    then gradual random from s_k to s on dissipating's schedule."""

    family: ClassVar[str] = "control"
    color: ClassVar[str | None] = "teal"
    invertible: ClassVar[bool] = False  # its second stage has nothing to invert
    stage: ClassVar[type[Dissipating]] = GradualRandom
    roles: ClassVar[tuple[Role, ...]] = (Role("combined", "kstarts_gradual_random", same=True),)

    tau: float | None = fixed(Combined, "tau")
    movement: str = fixed(Combined, "movement")


# ---- established baselines (docs/method.md, "Baselines beyond the paper") --------------------------


@contextmanager
def _scratch(model: nn.Module, train: bool, dtype=None):
    """A throwaway copy of the model to score on, in train or eval mode whatever mode the
    caller left the model in (so the mask never depends on it), with every prunable weight
    differentiable (frozen layers are scored too). The model itself stays exactly as it was."""
    copy_ = copy.deepcopy(model)
    if dtype is not None:
        copy_.to(dtype)
    copy_.train(train)
    for w in masks.prunable(copy_).values():
        w.requires_grad_(True)
    yield copy_
    del copy_


def _batches(ctx: Context, n: int):
    """The first ``n`` training batches of epoch 0 (the order every method sees)."""
    return itertools.islice(ctx.trainer.train_batches.epoch(0), n)


@dataclass
class ScorePruner(Pruner):
    """Score every prunable weight once at θ0; keep the highest scores (one shared selection)."""

    invertible: ClassVar[bool] = True
    scope: str = option("global", "global: one ranking of all weights; layerwise: every layer at the sparsity; "
                        "erk: ERK counts per layer", choices=SCOPES)

    def scores(self, ctx: Context) -> dict[str, Tensor]:
        raise NotImplementedError

    def prune(self, ctx: Context) -> dict:
        with ctx.trainer.scoring():
            scores = self.scores(ctx)
        if ctx.invert:  # keep the lowest instead
            scores = {n: -s for n, s in scores.items()}
        ctx.trainee.set_mask(masks.select(scores, self.sparsity, self.scope))
        return {}


@PRUNERS.register("magnitude")
@dataclass
class Magnitude(ScorePruner):
    """Keep the largest |θ0|, per layer by default: ranked globally, layers initialized with
    smaller weights (larger fan-in) are emptied first."""

    color: ClassVar[str | None] = "tab:brown"
    scope: str = option("layerwise", "layerwise (globally, layers of larger fan-in are emptied first), global "
                        "or erk", choices=SCOPES)

    def scores(self, ctx: Context) -> dict[str, Tensor]:
        return {n: w.detach().abs() for n, w in ctx.trainee.weights.items()}


@PRUNERS.register("snip")
@dataclass
class Snip(ScorePruner):
    """SNIP (Lee et al. 2019): |θ ⊙ g| at θ0, g the gradient of the task's loss over all the
    sampled batches (summed over batches, the absolute value taken once), batch norm in train mode."""

    color: ClassVar[str | None] = "tab:purple"
    version: ClassVar[int] = 2  # 1 summed per-batch |θ ⊙ g_b|: another estimator

    batches: int = option(10, "training batches whose loss gradient is scored at θ0", **AT_LEAST_1)

    def scores(self, ctx: Context) -> dict[str, Tensor]:
        with _scratch(ctx.trainee.model, train=True) as model:
            weights = masks.prunable(model)
            g = {n: torch.zeros_like(w) for n, w in weights.items()}
            for x, y in _batches(ctx, self.batches):
                ctx.trainer.count_pass(model, x, ctx.trainee.mask)
                grads = torch.autograd.grad(ctx.trainer.loss(model(x), x, y), list(weights.values()))
                for n, grad in zip(weights, grads):
                    g[n] += grad
            return {n: (w.detach() * g[n]).abs() for n, w in weights.items()}


@PRUNERS.register("grasp")
@dataclass
class Grasp(ScorePruner):
    """GraSP (Wang et al. 2020): score -θ ⊙ Hg of the task's loss, a classifier's logits divided by
    a temperature (a reconstruction's outputs are not: its temperature is 1); the highest scores
    are removed. Hg by double backward."""

    color: ClassVar[str | None] = "tab:pink"
    batches: int = like(Snip, "batches")
    temperature: float = option(200.0, "the logits are divided by this", check=lambda v: v > 0, must="positive")

    def scores(self, ctx: Context) -> dict[str, Tensor]:
        temperature = self.temperature if ctx.trainer.task.logits else 1.0
        with _scratch(ctx.trainee.model, train=True) as model:  # batch statistics, as GraSP's own code
            loss = lambda x, y: ctx.trainer.loss(model(x) / temperature, x, y)  # noqa: E731
            params = list(masks.prunable(model).values())
            data = list(_batches(ctx, self.batches))
            g = [torch.zeros_like(w) for w in params]
            for x, y in data:  # g = ∂L/∂θ, held fixed
                ctx.trainer.count_pass(model, x, ctx.trainee.mask)
                grads = torch.autograd.grad(loss(x, y), params)
                g = [a + b for a, b in zip(g, grads)]
            hg = [torch.zeros_like(w) for w in params]
            for x, y in data:  # Hg = ∂(gᵀ ∂L/∂θ)/∂θ
                # forward, backward with its graph, then the backward of that: two forward+backward
                ctx.trainer.count_pass(model, x, ctx.trainee.mask, passes=6)
                grads = torch.autograd.grad(loss(x, y), params, create_graph=True)
                dot = sum((a * b.detach()).sum() for a, b in zip(grads, g))
                hg = [a + b for a, b in zip(hg, torch.autograd.grad(dot, params))]
            names = list(masks.prunable(model))
            # GraSP removes the highest -θ ⊙ Hg, so it keeps the highest θ ⊙ Hg
            return {n: (w.detach() * h) for n, w, h in zip(names, params, hg)}


@PRUNERS.register("synflow")
@dataclass
class SynFlow(ScorePruner):
    """SynFlow (Tanaka et al. 2020), data-free: |θ| weights, an all-ones input, R = Σ outputs,
    score |θ ⊙ ∂R/∂θ|, over ``rounds`` rounds with the density following d^(r/rounds). With
    ``scope`` erk every round keeps the ERK counts at that round's density, within the last mask."""

    color: ClassVar[str | None] = "tab:olive"
    rounds: int = option(100, "pruning rounds, the density following d^(r/rounds)", **AT_LEAST_1)
    double: bool = option(False, "score in float64, for deep networks whose R overflows float32")

    def prune(self, ctx: Context) -> dict:
        x, _ = next(iter(_batches(ctx, 1)))
        dtype = torch.float64 if self.double else torch.float32
        # batch norm in inference mode: R is a polynomial of the weights
        with ctx.trainer.scoring(), _scratch(ctx.trainee.model, train=False, dtype=dtype) as model:
            with torch.no_grad():
                for p in model.state_dict().values():
                    if p.is_floating_point():
                        p.abs_()
            weights = masks.prunable(model)
            original = {n: w.detach().clone() for n, w in weights.items()}
            ones = torch.ones((1, *x.shape[1:]), dtype=dtype, device=x.device)
            mask = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
            density = 1 - self.sparsity
            for r in range(1, self.rounds + 1):
                with torch.no_grad():
                    for n, w in weights.items():
                        w.copy_(original[n] * mask[n])
                model.zero_grad()
                ctx.trainer.count_pass(model, ones, mask)  # at this round's density
                model(ones).sum().backward()
                scores = {n: (w.detach() * w.grad).abs() for n, w in weights.items()}
                if not all(torch.isfinite(s).all() for s in scores.values()):
                    raise DivergedError(
                        "SynFlow scores overflowed (R is too large in float32 for this network); "
                        "rerun with the option double (--double)"
                    )
                if ctx.invert:  # keep the lowest single-shot scores (iterating would revive them)
                    mask = masks.select({n: -s for n, s in scores.items()}, self.sparsity, self.scope)
                    break
                mask = masks.select(scores, 1 - density ** (r / self.rounds), self.scope, within=mask)
        ctx.trainee.set_mask(mask)
        return {"rounds": self.rounds}


@PRUNERS.register("posttrain")
@dataclass
class PostTrain(Pruner):
    """The reference from the other side: train dense for all the epochs, prune the smallest
    weights globally in one shot, then fine-tune."""

    family: ClassVar[str] = "reference"
    color: ClassVar[str | None] = "tab:cyan"
    finetune_epochs: int = option(5, "fine-tuning epochs after the one-shot pruning",
                                  check=lambda v: v >= 0, must="an integer of 0 or more")
    scope: str = option("global", "global, layerwise or erk ranking of |θ| after training", choices=SCOPES)

    def trained_epochs(self, epochs: int) -> float:
        return float(epochs + self.finetune_epochs)

    def prune(self, ctx: Context) -> dict:
        t = ctx.trainee
        ctx.trainer.run(t, ctx.trainer.epochs)  # the same dense training every method gets
        metric = ctx.trainer.task.test_metric
        dense = t.history[-1][metric]
        t.set_mask(masks.select({n: w.detach().abs() for n, w in t.weights.items()}, self.sparsity, self.scope))
        t.final = True  # fine-tuning keeps it
        ctx.trainer.run(t, self.finetune_epochs)
        return {f"dense_{metric}": dense, "total_epochs": t.epoch,
                "finetune_epochs": self.finetune_epochs}
