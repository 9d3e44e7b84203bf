"""The two ways in: ``fit`` (bring your own model) and ``run`` (everything by name)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import connectivity, masks, memory, models, pruners, samples, seeds, stacking, tasks
from . import data as datasets
from . import train as loop
from .errors import InitpruneError
from .options import OptionError
from .result import RunResult
from .spec import FIT_EPOCHS, RUN, SETTINGS, RunSpec, check_epochs, device_kind, make_pruner
from .spec import resolve_device as _resolve_name
from .train import Settings, Trainee, Trainer


@contextlib.contextmanager
def _threaded(count: int | None):
    """Torch's thread count set to ``count`` inside (None: left as the caller has it), and the
    caller's count restored after: the count changes float results, so a run fixes it."""
    saved = torch.get_num_threads()
    if count is not None:
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise OptionError("threads", f"must be a positive integer, got {count!r}")
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def resolve_device(device: str) -> torch.device:
    """The device to train on, on this machine: ``auto`` as it resolves it (spec.resolve_device).
    A CUDA device it does not have is refused in one line: a spec a sweep's driver resolved to
    cuda for GPU workers, given to a worker without one, trains nowhere else."""
    name = torch.device(_resolve_name(device))
    if name.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (name.index or 0) >= count:
            import socket

            has = f"has {count} CUDA device(s)" if count else "has no CUDA device"
            raise InitpruneError(f"device {name} asked for, but this machine ({socket.gethostname()}) {has}; use "
                                 "device cpu or auto, or in a sweep declare GPUs (--gpus-per-task, resources: gpus) "
                                 "only where its workers have them")
    return name


def _check_split(name: str, split, dtype: torch.dtype):
    """(X, y) tensors that agree with each other, X in the model's dtype; a DataLoader is taken
    as it is (its batches are checked as they come: data.check_batch)."""
    if split is None or isinstance(split, torch.utils.data.DataLoader):
        return split
    if not (isinstance(split, (tuple, list)) and len(split) == 2 and all(torch.is_tensor(t) for t in split)):
        raise InitpruneError(f"{name} must be an (X, y) pair of tensors or a DataLoader")
    x, y = split
    if len(x) != len(y) or len(y) == 0:
        raise InitpruneError(f"{name}: X has {len(x)} rows and y has {len(y)}; give one label per row")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8) or y.dim() != 1:
        raise InitpruneError(f"{name}: y must be a 1-d tensor of integer class labels, got {y.dtype} {tuple(y.shape)}")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise InitpruneError(f"{name}: X contains NaN or infinite values; clean or impute them first")
    if int(y.min()) < 0:
        raise InitpruneError(f"{name}: labels must be class indices >= 0, got {int(y.min())}")
    return x.to(dtype), y.long()


def _model_dtype(model: nn.Module) -> torch.dtype:
    """The one floating dtype of the model's parameters: float32 or float64."""
    kinds = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.is_floating_point()})
    if len(kinds) > 1:
        raise InitpruneError(f"the model mixes parameter dtypes ({', '.join(kinds)}); "
                             "give it one with model.float() or model.double()")
    if kinds and kinds[0] not in ("float32", "float64"):
        # plain SGD or Adam in half precision loses small updates and overflows without loss scaling
        raise InitpruneError(f"the model's parameters are {kinds[0]}; fit trains in float32 or float64: "
                             "call model.float() first")
    return getattr(torch, kinds[0]) if kinds else torch.float32


def _first_batch(name: str, loader, dtype: torch.dtype):
    """A DataLoader's first batch, checked, drawn without moving the random state its sampler
    draws from (torch's global generator, or the loader's own): training sees the same order."""
    own = loader.generator.get_state() if loader.generator is not None else None
    with torch.random.fork_rng(devices=[]):
        try:
            batch = next(iter(loader), None)
        finally:
            if own is not None:
                loader.generator.set_state(own)
    if batch is None:
        raise InitpruneError(f"{name}: the DataLoader yields no batches")
    return datasets.check_batch(name, batch, dtype)


@dataclass(frozen=True)
class Setup:
    """How one run trains, resolved once, before anything loads: ``fit``'s arguments or a
    ``RunSpec``'s fields, checked (the pruner's options, the training settings, the epochs it
    needs, the device this machine has), and what the data brings (``augment``, ``target``)."""

    method: str
    pruner: pruners.Pruner
    settings: Settings
    sparsity: float
    epochs: int
    seed: int
    device: torch.device
    ablation: str = "none"
    task: tasks.Task = field(default_factory=lambda: tasks.get("classification"))
    augment: object = None  # a map of (a batch, its generator) to the augmented batch
    target: object = None  # a reconstruction's map of a batch of inputs to what it reproduces

    @classmethod
    def of(cls, method: str, sparsity: float, epochs: int, seed: int, device: str = "auto", ablation: str = "none",
           task: str = "classification", augment=None, target=None, options: dict | None = None) -> Setup:
        """``fit``'s arguments resolved; its ``**options`` are the method's and the training settings."""
        options = options or {}
        task = tasks.get(task)
        settings = Settings(**{k: v for k, v in options.items() if k in SETTINGS})
        pruner = make_pruner(method, sparsity, ablation, **{k: v for k, v in options.items() if k not in SETTINGS})
        check_epochs(pruner, epochs)
        return cls(method, pruner, settings, sparsity, epochs, seed, resolve_device(device), ablation, task, augment,
                   target)

    @classmethod
    def of_spec(cls, spec: RunSpec, data: datasets.Data) -> Setup:
        """A spec on its dataset (already resolved and checked where it was made)."""
        return cls.of(spec.method, spec.sparsity, spec.epochs, spec.seed, spec.device, spec.ablation,
                      models.task_of(spec.arch), data.augment, data.target if data.unit is not None else None,
                      {**spec.training, **spec.options})


def fit(model: nn.Module, train, test, method: str = RUN["method"], sparsity: float = RUN["sparsity"],
        epochs: int = FIT_EPOCHS, seed: int = RUN["seed"], *, val=None, device: str = RUN["device"], augment=None,
        ablation: str = RUN["ablation"], threads: int | None = None, task: str = "classification", target=None,
        **options) -> RunResult:
    """Prune ``model`` with ``method`` at ``sparsity`` and train it for ``epochs`` in all.

    ``train``/``val``/``test``: ``(X, y)`` tensors or DataLoaders. The model is trained in place;
    its pruned weights are exactly 0. Method options use docs/method.md's words (``k=8``, ...); the
    training settings are options too (``optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=0.0,
    batch_size=32`` by default: ``train.Settings``).
    ``ablation`` (Frankle et al. 2020): the method's final mask is shuffled within each layer
    (``shuffle``), kept with fresh weights (``reinit``), or the method keeps its worst choices
    (``invert``); the ablated network then trains from initialization for ``epochs``.
    ``rewind`` is the control: the mask unchanged, trained again from θ0.
    ``threads``: torch's thread count while it trains (None: the caller's); the caller's count
    is restored after.
    ``task`` (initprune/tasks.py): ``classification`` (the model returns logits, ``y`` holds
    class labels) or ``reconstruction`` (the model returns its input's shape, trained on the mean
    squared error against ``target(x)``: a map of a batch of inputs to what it reproduces, the
    inputs themselves by default; the splits are still (X, y) pairs, ``y`` not used).
    """
    with _threaded(threads):
        setup = Setup.of(method, sparsity, epochs, seed, device, ablation, task, augment, target, options)
        pruned = _prune(model, train, val, test, setup)
        pruned.trainer.run(pruned.trainee, pruned.epochs_left)
        return _finish(pruned)


@dataclass
class Pruned:
    """A run between its pruning and the training that follows (``run_group`` trains that for
    several seeds at once)."""

    setup: Setup
    trainer: Trainer
    trainee: Trainee
    extra: dict
    test: object
    began: float
    input_shape: tuple[int, ...]  # one input's, without the batch (connectivity.effective)

    @property
    def epochs_left(self) -> int:
        return max(0, self.setup.epochs - self.trainee.epoch)

    @property
    def steps_left(self) -> int:
        """The steps ``trainer.run(trainee, epochs_left)`` trains."""
        per = self.trainer.steps_per_epoch
        return (self.trainee.steps // per + self.epochs_left) * per - self.trainee.steps if self.epochs_left else 0


def _prune(model: nn.Module, train, val, test, setup: Setup) -> Pruned:
    """Everything a run does up to its final mask (and the ablation's fresh start)."""
    began = time.perf_counter()
    settings, dev, task, seed = setup.settings, setup.device, setup.task, setup.seed
    masks.prunable(model)  # a model with nothing to prune fails here
    dtype = _model_dtype(model)
    names = ("train", "val", "test")
    splits = [_check_split(n, s, dtype) for n, s in zip(names, (train, val, test))]
    firsts = {n: _first_batch(n, s, dtype) for n, s in zip(names, splits)
              if isinstance(s, torch.utils.data.DataLoader)}
    memory.check(model, setup.pruner, settings, splits, dev)  # before any copy of the model is made
    model.to(dev)
    splits = [(s[0].to(dev), s[1].to(dev)) if isinstance(s, tuple) else s for s in splits]
    classes, shape = _check_model(model, splits, firsts, dev, task, setup.target)
    splits = [datasets.CheckedLoader(s, n, dtype, classes) if isinstance(s, torch.utils.data.DataLoader) else s
              for n, s in zip(names, splits)]
    train, val, test = splits
    batches = (datasets.LoaderBatches(train, dev) if isinstance(train, datasets.CheckedLoader)
               else datasets.Batches(*train, settings.batch_size, seed, setup.augment))
    trainer = Trainer(batches, val, test, settings, dev, setup.epochs, task=task, target=setup.target)
    ablation = setup.ablation
    theta0 = copy.deepcopy(model.state_dict()) if ablation != "none" else None
    trainee = Trainee(model, settings, masks.dense(model))
    ctx = pruners.Context(trainer, trainee, seeds.generator(seed, "masks"), invert=ablation == "invert")
    extra = pruners.choose(setup.pruner, ctx)  # the mask and report checked, the report JSON-safe
    if ablation != "none":
        trainee, extra["ablation"] = _ablate(trainee, settings, ablation, theta0, seed)
    trainee.final = True  # the training that follows keeps this mask (sparse compute may start)
    return Pruned(setup, trainer, trainee, extra, test, began, shape)


def _finish(p: Pruned) -> RunResult:
    """The result of a run whose training is done, with its mask: ``fit``'s (no dataset, no
    architecture); ``run_group`` adds the spec's identity."""
    trainer, trainee = p.trainer, p.trainee
    last = trainee.history[-1]
    task = trainer.task
    records = trainer.record(trainee.model, p.test)  # as the history's metrics were computed
    compute_layers = trainee.compute_layers or {n: "dense" for n in trainee.mask}
    trainee.densify()  # the model leaves as it came in: dense layers, the pruned weights zero
    reach = connectivity.effective(trainee.model, trainee.mask, p.input_shape)
    return RunResult(
        method=p.setup.method, dataset=None, arch=None, seed=p.setup.seed, ablation=p.setup.ablation,
        mask={n: m.cpu() for n, m in trainee.mask.items()},
        sparsity_target=float(p.setup.sparsity),
        sparsity_actual=masks.sparsity(trainee.mask),
        test_accuracy=last.get("test_accuracy"),
        val_accuracy=last.get("val_accuracy"),
        epochs=trainee.epoch,  # posttrain: its fine-tuning too
        history=trainee.history,
        layers=masks.layer_counts(trainee.mask),
        extra=p.extra,
        seconds=time.perf_counter() - p.began,
        effective_sparsity=reach.sparsity,
        dead_classes=reach.dead_classes if task.logits else None,
        dead_outputs=reach.dead_classes,  # paths counts the last layer's units no path reaches
        **{task.record_field: None if records is None else task.encode(records)},
        cost=trainer.cost.report(trainee.mask, p.setup.epochs),
        compute_layers=compute_layers,
        training_seconds=trainer.seconds,
        test_reconstruction_error=last.get("test_reconstruction_error"),
        val_reconstruction_error=last.get("val_reconstruction_error"),
        task=task.name, metric=task.test_metric, higher_is_better=task.higher_is_better,
    )


def _ablate(trainee: Trainee, settings: Settings, ablation: str, theta0: dict, seed: int):
    """The sanity checks of Frankle et al. 2020 on the method's final mask: a new trainee that
    starts over from initialization (its weights θ0, or fresh ones for reinit)."""
    model, mask = trainee.model, trainee.mask
    report = {"kind": ablation, "epochs_before_restart": trainee.epoch}
    if ablation == "shuffle":  # same count per layer, positions drawn anew
        g = seeds.generator(seed, "shuffle")
        shuffled = {}
        for n, m in mask.items():
            order = torch.randperm(m.numel(), generator=g).to(m.device)
            shuffled[n] = m.flatten()[order].view_as(m)
        moved = sum(int((shuffled[n] != m).sum()) for n, m in mask.items())
        report["mask_changed"] = moved / max(1, 2 * masks.kept(mask))
        mask = shuffled
    with torch.no_grad():
        model.load_state_dict(theta0)
        if ablation == "reinit":  # same mask, weights drawn from the initializer with another seed
            models.initialize(model, seeds.generator(seed, "reinit"))
            changed = [(w != theta0[n]).float().mean() for n, w in masks.prunable(model).items()]
            report["weights_changed"] = float(sum(changed) / len(changed))
    fresh = Trainee(model, settings, mask)
    return fresh, report


@torch.no_grad()
def _check_model(model: nn.Module, splits, firsts: dict, dev, task: tasks.Task,
                 target=None) -> tuple[int | None, tuple[int, ...]]:
    """The model takes the data and returns (N, classes) logits, and every label names one of
    its outputs (a DataLoader's first batch here, its other batches as they come); a
    reconstruction's model returns its target's shape. Returns the number of outputs (None for a
    reconstruction: no label is checked against it) and the shape of one input."""
    tensors = [s for s in splits if isinstance(s, tuple)]
    labels = [y for _, y in tensors] + [y for _, y in firsts.values()]
    x = (tensors[0][0] if tensors else next(iter(firsts.values()))[0].to(dev))[:2]
    # a model fed only DataLoaders was not called here before: eval mode leaves its batch norm
    # statistics as they were (the tensor case keeps its long-standing train-mode call)
    was_training = model.training
    model.train(bool(tensors) and was_training)
    try:
        out = model(x)
    except RuntimeError as err:
        raise InitpruneError(
            f"the model does not accept inputs of shape {tuple(x.shape[1:])}: {str(err).splitlines()[0]}"
        ) from None
    except Exception as err:  # whatever else the forward of a user's model raises: one line too
        raise InitpruneError(f"the model fails on the data: {type(err).__name__}: {str(err).splitlines()[0]}") from None
    finally:
        model.train(was_training)
    if not torch.is_tensor(out):
        raise InitpruneError(f"the model returns a {type(out).__name__}; fit needs its forward to return one "
                             "tensor of logits, (N, classes): wrap it to return only the logits")
    if task.on_input:
        want = tasks.targets(task, x, None, target).shape
        if out.shape != want:
            raise InitpruneError(f"the model returns a tensor of shape {tuple(out.shape)} for inputs of shape "
                                 f"{tuple(x.shape)}; a reconstruction needs its target's shape {tuple(want)}")
        return None, tuple(x.shape[1:])
    if out.dim() != 2 or len(out) != len(x):
        raise InitpruneError(f"the model returns a tensor of shape {tuple(out.shape)} for {len(x)} inputs; "
                             "fit needs logits of shape (N, classes)")
    outputs = out.shape[-1]
    top = max(int(y.max()) for y in labels)
    if top >= outputs:
        raise InitpruneError(f"label {top} is out of range for a model with {outputs} outputs")
    return outputs, tuple(x.shape[1:])


def run(config: RunSpec, data_root: str | Path | None = None, device: str | None = None,
        save_model: str | Path | None = None, out: str | Path | None = None, record=None) -> RunResult:
    """One run by name: the result JSON (README, "Command line"), written to ``out`` if given, then the
    model to ``save_model``. ``device`` replaces the spec's (and so its identity's device kind).
    ``record(result)`` (``grid.log_run``) logs it first and sets its ``run_id``; without it,
    ``run_id`` is None. A group of one of ``run_group``; its error raised."""
    if device is not None:
        config = dataclasses.replace(config, device=device)
    check_writable(out, "--out")  # a destination that cannot be written fails before training
    check_writable(save_model, "--save-model")

    def then(result: RunResult, model: nn.Module, mask: masks.Mask) -> None:
        try:
            if record:
                record(result)
        finally:  # the outputs are written even if the store fails
            _deliver(result, model, mask, out, save_model)

    (outcome,) = run_group([config], data_root, then=then)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def run_group(specs: list[RunSpec], data_root: str | Path | None = None, *,
              then=None) -> list[RunResult | BaseException]:
    """Train a group of runs by name, specs that differ in the seed only (a single point is a group
    of one), and return per spec its result, or the error that stopped it: one seed that fails
    (a diverged loss, a model that does not fit) does not lose the others. Ctrl-C is raised.

    Each seed is pruned as it is alone; the training that follows goes through
    ``train.train_group``, which trains the seeds as one stacked model where that is bitwise
    what each gets alone and every seed trains dense (initprune/stacking.py), else one by one.
    Which seeds are grouped is ``stacking.plan``'s (``stacking.RULES``). ``then(result, model, mask)``,
    called once a seed's result is made, hands over what the result does not hold (``run`` writes
    its outputs there); its error is that seed's."""
    if any(stacking.seedless(s) != stacking.seedless(specs[0]) for s in specs):
        raise ValueError("a group's specs must differ in the seed only")
    out: list[RunResult | BaseException | None] = [None] * len(specs)
    began = time.perf_counter()
    try:
        data = datasets.load(specs[0].dataset, data_root) if specs else None
    except Exception as err:  # every seed fails as it would alone
        return [err] * len(specs)
    seconds = [time.perf_counter() - began] * len(specs)
    pruned: dict[int, Pruned] = {}
    models_of: dict[int, nn.Module] = {}
    with _threaded(specs[0].threads if specs else None):
        for i, spec in enumerate(specs):
            began = time.perf_counter()
            try:
                models_of[i] = models.build(spec.arch, data.input_shape, data.num_classes, spec.seed)
                pruned[i] = _prune(models_of[i], data.train, data.val, data.test, Setup.of_spec(spec, data))
            except Exception as err:  # this seed fails as it would alone
                out[i] = err
            seconds[i] += time.perf_counter() - began
        left = {i: p.steps_left for i, p in pruned.items() if p.steps_left > 0}
        # seeds that stand at the same step train together; any other alone
        groups = [list(left)] if len(set(left.values())) == 1 else [[i] for i in left]
        for group in groups:
            began = time.perf_counter()
            try:
                errors = loop.train_group([(pruned[i].trainer, pruned[i].trainee) for i in group], left[group[0]])
            except Exception as err:  # the group's training itself: each of its seeds fails
                errors = [err] * len(group)
            spent = (time.perf_counter() - began) / len(group)
            for i, err in zip(group, errors):
                seconds[i] += spent
                if err is not None:
                    out[i] = err
                    del pruned[i]
        for i, p in pruned.items():
            began = time.perf_counter()
            try:
                fitted = _finish(p)
                seconds[i] += time.perf_counter() - began
                out[i] = _run_result(specs[i], fitted, seconds[i])
                # a reconstruction: a few test images for the report
                if tasks.get(models.task_of(specs[i].arch)).on_input:
                    out[i].reconstructions = samples.reconstructions(models_of[i], data)  # an artifact, not a field
                if then is not None:
                    then(out[i], models_of[i], fitted.mask)
            except Exception as err:
                out[i] = err
    return out


def _run_result(config: RunSpec, fitted: RunResult, seconds: float) -> RunResult:
    """``fit``'s result of a spec as the result JSON's record: the spec's identity beside what was
    measured, the run's whole time, and no mask (``then`` is handed it, ``run`` writes it)."""
    return dataclasses.replace(
        fitted, dataset=config.dataset, arch=config.arch, options=dict(config.options),
        training=dict(config.training), variant=json.dumps(config.variant(), sort_keys=True),
        config_hash=config.hash(), device=device_kind(config.device), threads=config.threads, seconds=seconds,
        mask=None)


def check_writable(path: str | Path | None, flag: str) -> None:
    """Create and remove a file beside ``path``: what cannot be written is known before training."""
    if path is None:
        return
    path = Path(path)
    if not path.parent.exists():
        raise InitpruneError(f"{flag} {path}: folder {path.parent} does not exist; create it first")
    if path.is_dir():
        raise InitpruneError(f"{flag} {path} is a folder; give a file name")
    probe = path.with_name(f".{path.name}.{os.getpid()}.probe")
    try:
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise InitpruneError(f"{flag} {path}: cannot write in {path.parent} ({err.strerror or err}); "
                             "choose a writable place") from None


class OutputError(RuntimeError):
    """The run finished but an output could not be written; ``result`` is the result, when
    it is the result JSON that was lost, so that the caller can still hand it over."""

    def __init__(self, message: str, result: RunResult | None = None):
        super().__init__(message)
        self.result = result


def _deliver(result: RunResult, model: nn.Module, mask: masks.Mask, out, save_model) -> None:
    """The result JSON first, then the model, each on its own: one that fails does not keep
    the other from being written."""
    written, failed = [], {}
    for flag, path, write in (("--out", out, lambda p: p.write_text(json.dumps(result.to_dict(), indent=1))),
                              ("--save-model", save_model, lambda p: save(model, mask, p))):
        if path is None:
            continue
        try:
            _atomic(Path(path), write)
            written.append(f"{flag} {path}")
        except OSError as err:
            failed[flag] = f"{flag} {path} ({err.strerror or err})"
    if failed:
        kept = f"; written: {', '.join(written)}" if written else ""
        raise OutputError(f"the run finished but could not write {' and '.join(failed.values())}{kept}",
                          result if "--out" in failed else None)


def _atomic(path: Path, write) -> None:
    """Write to a temporary file beside ``path``, then rename: a finished file or none."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save(model: nn.Module, mask: masks.Mask, path: str | Path) -> None:
    """A checkpoint that loads with ``torch.load(path, weights_only=True)``."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "mask": {n: m.cpu() for n, m in mask.items()}}, path)


def load(path: str | Path) -> dict:
    """Read a checkpoint written by ``save``; never unpickles code."""
    return torch.load(path, weights_only=True, map_location="cpu")


def compare(methods, sparsity: float = RUN["sparsity"], epochs: int = FIT_EPOCHS, seed: int = RUN["seed"],
            **config) -> list[RunResult]:
    """One run per method on the same data and seed (dense at sparsity 0), untracked."""
    fixed = {m: pruners.PRUNERS[m].fixed_sparsity for m in methods}
    return [run(RunSpec(method=m, sparsity=sparsity if fixed[m] is None else fixed[m], epochs=epochs, seed=seed,
                        **config)) for m in methods]

