"""The input boundary: declarative field specs that validate *and* describe themselves.

A :class:`Spec` names an object's fields; each field checks a value (type, size, range,
characters, strict dates) and renders its own OpenAPI schema. The reward and model-version
inputs are specs, so the schema that ``/api/schema/`` publishes is generated from the very
definitions that the validators enforce (``mabdash.schema`` registers them with
drf-spectacular). Every refusal names the field and says why; a spec checks a whole object
and reports every bad field at once.

The JSON parser (``mabdash.parsers``) hands over numbers that a double cannot hold and
``NaN``/``Infinity`` literals as :class:`Unrepresentable` markers instead of failing the
whole body, so one bad item of a batch costs only that item.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

#: The largest magnitude a number field accepts unless it says otherwise.
NUMBER_LIMIT = 1e15
MAX_INTEGER = 2**63 - 1
# RFC 3339: a date, "T" (or space), a time with optional fraction, and a required offset.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


class InputError(ValueError):
    """A value a field refuses; ``str(error)`` says why (the caller names the field)."""


@dataclass(frozen=True)
class Unrepresentable:
    """A JSON number no double can hold (or NaN/Infinity), kept as its source text."""

    text: str


def storable_text(value: str) -> str | None:
    """Why a string cannot be stored (NUL, or a lone surrogate), or None if it can."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no unpaired surrogates)"
    return None


@dataclass(frozen=True)
class Field:
    """Base of every field: a description and whether JSON ``null`` means "not given"."""

    description: str = ""
    nullable: bool = False

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def openapi(self) -> dict[str, Any]:
        schema = self._schema()
        if self.description:
            schema["description"] = self.description
        if self.nullable:
            schema["nullable"] = True
        return schema

    def _schema(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Field):
    """A string of ``min_length``–``max_length`` characters, optionally matching ``pattern``."""

    max_length: int = 200
    min_length: int = 1
    pattern: str | None = None
    #: What the pattern allows, in words (the refusal message).
    pattern_help: str = ""

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise InputError("must be a string")
        problem = storable_text(value)
        if problem:
            raise InputError(problem)
        if not self.min_length <= len(value) <= self.max_length:
            raise InputError(f"must be {self.min_length}–{self.max_length} characters, got {len(value)}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise InputError(self.pattern_help or f"must match {self.pattern}")
        return value

    def _schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "minLength": self.min_length, "maxLength": self.max_length}
        if self.pattern:
            schema["pattern"] = f"^{self.pattern}$"
        return schema


@dataclass(frozen=True)
class Integer(Field):
    """A JSON integer (not a boolean, not a float) in [minimum, maximum]."""

    minimum: int = 0
    maximum: int = MAX_INTEGER

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError("must be an integer")
        if not self.minimum <= value <= self.maximum:
            raise InputError(f"must be in [{self.minimum}, {self.maximum}]")
        return value

    def _schema(self) -> dict[str, Any]:
        return {"type": "integer", "format": "int64", "minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class Number(Field):
    """A finite JSON number in [minimum, maximum] (integers are taken as floats)."""

    minimum: float = -NUMBER_LIMIT
    maximum: float = NUMBER_LIMIT

    def check(self, value: Any) -> float:
        if isinstance(value, Unrepresentable):
            raise InputError(f"must be a finite number in [{self.minimum:g}, {self.maximum:g}]")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError("must be a number")
        number = float(value) if not isinstance(value, int) or abs(value) < 2**53 else _big(value)
        if not math.isfinite(number) or not self.minimum <= number <= self.maximum:
            raise InputError(f"must be a finite number in [{self.minimum:g}, {self.maximum:g}]")
        return number

    def _schema(self) -> dict[str, Any]:
        return {"type": "number", "format": "double", "minimum": self.minimum, "maximum": self.maximum}


def _big(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf


@dataclass(frozen=True)
class DateTime(Field):
    """An RFC 3339 date-time with a time-zone offset, checked strictly (no 30 February)."""

    def check(self, value: Any) -> datetime:
        if not isinstance(value, str) or not _RFC3339.match(value):
            raise InputError("must be an RFC 3339 date-time with a time zone, e.g. 2026-12-02T09:30:00Z")
        try:
            parsed = datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            raise InputError(f"{value!r} is not a real date and time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def _schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}


@dataclass(frozen=True)
class Choice(Field):
    """One of ``values``."""

    values: tuple[str, ...] = ()

    def check(self, value: Any) -> str:
        if value not in self.values or not isinstance(value, str):
            raise InputError(f"must be one of {', '.join(self.values)}")
        return value

    def _schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


@dataclass(frozen=True)
class JsonObject(Field):
    """A free-form JSON object, bounded in size and depth, every string storable, every number finite."""

    max_bytes: int = 65_536
    max_depth: int = 10

    def check(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise InputError("must be a JSON object")
        problem = json_problem(value, self.max_depth)
        if problem:
            raise InputError(problem)
        if len(orjson.dumps(value)) > self.max_bytes:
            raise InputError(f"must be at most {self.max_bytes} bytes of JSON")
        return value

    def _schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": True, "maxProperties": self.max_bytes // 4}


def json_problem(value: Any, max_depth: int) -> str | None:
    """Why a parsed JSON value cannot be kept: too deep, an unstorable string, a non-finite number."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > max_depth:
                return f"must be nested at most {max_depth} levels deep"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            problem = storable_text(item)
            if problem:
                return f"strings {problem}"
        elif isinstance(item, Unrepresentable) or (isinstance(item, float) and not math.isfinite(item)):
            return "numbers must be finite and fit a double"
        elif isinstance(item, int) and not -(2**63) <= item <= MAX_INTEGER:
            return "integers must fit in 64 bits"
    return None


@dataclass(frozen=True)
class Spec:
    """A JSON object's fields: which are required, each one's checks, and its OpenAPI schema."""

    name: str
    fields: Mapping[str, Field]
    required: frozenset[str] = field(default_factory=frozenset)
    description: str = ""

    def check(self, data: Any, whole: str = "body") -> tuple[dict[str, Any], dict[str, list[str]]]:
        """The cleaned fields (absent and null ones left out) and every field's problems.

        ``whole`` names the object itself when it is not an object at all (``reward`` for a
        batch item).
        """
        if not isinstance(data, dict):
            return {}, {whole: ["must be a JSON object"]}
        errors: dict[str, list[str]] = {}
        for name in sorted(set(data) - set(self.fields)):
            shown = name if storable_text(name) is None and len(name) <= 100 else "(unprintable name)"
            errors[shown] = [f"unknown field; expected one of {', '.join(self.fields)}"]
        clean: dict[str, Any] = {}
        for name, spec in self.fields.items():
            value = data.get(name)
            if value is None:
                if name in data and not spec.nullable:
                    errors[name] = ["must not be null"]
                elif name in self.required:
                    errors[name] = ["required"]
                continue
            try:
                clean[name] = spec.check(value)
            except InputError as error:
                errors[name] = [str(error)]
        return clean, errors

    def openapi(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {name: spec.openapi() for name, spec in self.fields.items()},
            "additionalProperties": False,
        }
        if self.required:
            schema["required"] = sorted(self.required)
        if self.description:
            schema["description"] = self.description
        return schema


def first_problem(errors: Mapping[str, Sequence[str]]) -> tuple[str, str]:
    """The first field and message of a check's errors (single-outcome answers)."""
    name = next(iter(errors))
    return name, errors[name][0]
