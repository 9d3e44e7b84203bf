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


def option(default: Any, help: str, *, choices: tuple | None = None, check: Callable[[Any], bool] | None = None,
           must: str | None = None):
    """A dataclass field declared as an option: ``choices`` the values it takes, or ``check`` a
    test of its value with ``must`` saying what the test asks ("an integer of at least 1")."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "check": check,
                                                        "must": must})


def like(cls: type, name: str):
    """The same option as ``cls`` declares under ``name`` (a method built from others)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return dataclasses.field(default=f.default, metadata=f.metadata)


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

    @property
    def flag(self) -> str:
        return flag(self.name)

    def _fail(self, value) -> OptionError:
        if self.choices:
            return OptionError(self.name, f"must be one of: {', '.join(map(str, self.choices))}; got {value!r}")
        return OptionError(self.name, f"must be {self.must or KINDS[self.kind]}, got {value!r}")

    def validate(self, value) -> None:
        if value is None and self.optional:
            return
        kind_ok = isinstance(value, self.kind) and (self.kind is bool or not isinstance(value, bool))
        if self.kind is float:
            kind_ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not kind_ok or (self.choices and value not in self.choices) or (self.check and not self.check(value)):
            raise self._fail(value)

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
        accepts = f" (one of: {', '.join(map(str, self.choices))})" if self.choices else ""
        return f"{self.name}={self.default}  {self.help}{accepts}"


@functools.cache
def options(cls: type, skip: tuple[str, ...] = ()) -> tuple[Option, ...]:
    """The declared options of a dataclass, in order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        kind, optional = hints[f.name], False
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            kind, optional = args[0], len(args) < len(typing.get_args(kind))
        if kind not in KINDS:
            raise InitpruneError(f"{cls.__name__}.{f.name}: an option is bool, int, float or str, not {kind}")
        meta = f.metadata
        out.append(Option(f.name, kind, optional, f.default, meta.get("help", ""), meta.get("choices"),
                          meta.get("check"), meta.get("must")))
    return tuple(out)


def validate(obj, skip: tuple[str, ...] = ()) -> None:
    """Every declared option of the dataclass instance ``obj`` holds a value it accepts."""
    for opt in options(type(obj), skip):
        opt.validate(getattr(obj, opt.name))
