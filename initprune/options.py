"""Options: the fields of a pruner (or of the training settings), each declared once with its
type, default, one-line help and what it accepts. The command line, ``list``, profiles,
notebooks, MLflow params and the validation all read these declarations.

    k: int = option(8, "random masks trained side by side", check=lambda k: k >= 1,
                    must="an integer of at least 1")
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InitpruneError

KINDS = {bool: "true or false", int: "an integer", float: "a finite number", str: "text"}


class OptionError(InitpruneError):
    """A bad value of one option, named as ``fit`` and profiles spell it (``warmup_epochs``);
    ``as_flag`` names it as the command line does (``--warmup-epochs``)."""

    def __init__(self, option: str, problem: str):
        super().__init__(f"{option} {problem}")
        self.option, self.problem = option, problem

    def as_flag(self) -> str:
        return f"{flag(self.option)} {self.problem}"


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # an option with no neutral value: it is always part of a run's identity


def option(default: Any, help: str, *, choices: tuple | None = None, check: Callable[[Any], bool] | None = None,
           must: str | None = None, neutral: Any = UNSET):
    """A dataclass field declared as an option: ``choices`` the values it takes, or ``check`` a
    test of its value with ``must`` saying what the test asks ("an integer of at least 1").

    ``neutral``: only for an option added after runs were stored, the value that reproduces what
    the code computed before the option existed. While the option holds it, it stays out of the
    run's identity, so that the stored runs keep theirs; any other value is part of it."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "check": check,
                                                        "must": must, "neutral": neutral})


def like(cls: type, name: str):
    """The same option as ``cls`` declares under ``name`` (a method built from others)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return dataclasses.field(default=f.default, metadata=f.metadata)
    raise InitpruneError(f"like({cls.__name__}, '{name}'): {cls.__name__} declares no option '{name}'")


@dataclass(frozen=True)
class Option:
    name: str
    kind: type  # bool, int, float or str
    optional: bool  # None means "the method's own choice"
    default: Any
    help: str
    choices: tuple | None = None
    check: Callable[[Any], bool] | None = None
    must: str | None = None
    neutral: Any = UNSET

    @property
    def flag(self) -> str:
        return flag(self.name)

    def _fail(self, value) -> OptionError:
        if self.choices:
            return OptionError(self.name, f"must be one of: {', '.join(map(str, self.choices))}; got {value!r}")
        return OptionError(self.name, f"must be {self.must or KINDS[self.kind]}, got {value!r}")

    def validate(self, value):
        """The value as this option holds it, its declared type (an integer given for a float
        option as the float: ``200`` is ``200.0``, one identity; a numpy scalar as a Python
        number), or an OptionError. A bool is no number."""
        if value is None and self.optional:
            return value
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if self.kind is int:
            ok = number and isinstance(value, numbers.Integral)
        elif self.kind is float:
            ok = number and math.isfinite(value)
        else:
            ok = isinstance(value, self.kind)
        if ok and self.kind is float:  # JSON, hashes and MLflow write 200 and 200.0 apart
            value = float(value)
        elif ok and self.kind is int and type(value) is not int:  # np.int64(64) -> 64
            value = int(value)
        if not ok or (self.choices and value not in self.choices) or (self.check and not self.check(value)):
            raise self._fail(value)
        return value

    def parse(self, text: str):
        """A value typed on the command line, as this option's type."""
        if self.kind is bool:
            if text.lower() not in ("true", "false"):
                raise self._fail(text)
            return text.lower() == "true"
        try:
            return self.kind(text)
        except ValueError:
            raise self._fail(text) from None

    def describe(self) -> str:
        """``name=default  help``, and the values it takes."""
        accepts = f"one of: {', '.join(map(str, self.choices))}" if self.choices else self.must or KINDS[self.kind]
        return f"{self.name}={self.default}  {self.help} ({accepts})"


@functools.cache
def declared(cls: type, skip: tuple[str, ...] = ()) -> tuple[Option, ...]:
    """The declared options of a dataclass, in order; a declaration the command line, profiles
    and MLflow could not carry is an error naming it."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        kind, optional = hints[f.name], False
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            kind, optional = (args[0] if len(args) == 1 else kind), len(args) < len(typing.get_args(kind))
        where = f"{cls.__module__}.{cls.__name__}.{f.name}"
        if kind not in KINDS:
            raise InitpruneError(f"{where}: an option is bool, int, float or str (or one of them | None), not {kind}")
        if f.default is dataclasses.MISSING or "help" not in f.metadata:
            raise InitpruneError(f"{where}: declare it with options.option(default, help, ...)")
        if not str(f.metadata["help"]).strip():
            raise InitpruneError(f"{where}: its help is empty; say in a line what the option does")
        meta = f.metadata
        opt = Option(f.name, kind, optional, f.default, meta["help"], meta.get("choices"), meta.get("check"),
                     meta.get("must"), meta.get("neutral", UNSET))
        for what, value in (("default", f.default), ("neutral value", opt.neutral)):
            try:
                if value is not UNSET:
                    opt.validate(value)
            except OptionError as err:
                raise InitpruneError(f"{where}: its {what} is refused by its own declaration ({err})") from None
        out.append(opt)
    return tuple(out)


def validate(obj, skip: tuple[str, ...] = ()) -> None:
    """Every declared option of the dataclass instance ``obj`` holds a value it accepts; numpy
    scalars become Python numbers (frozen dataclasses included)."""
    for opt in declared(type(obj), skip):
        value = getattr(obj, opt.name)
        held = opt.validate(value)
        if held is not value:
            object.__setattr__(obj, opt.name, held)
