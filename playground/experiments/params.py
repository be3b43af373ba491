"""Parameter declarations and the one validator every entry point uses.

The experiment page, the JSON API and the command line all hand their raw
values to :func:`validate`; nothing else parses parameters. Raw values come as
strings (query strings, forms, argv) or as JSON scalars, so the validator
accepts both and refuses anything ambiguous (``8.5`` threads, ``true`` as a
number) with a message that names the field and the rule it broke.

Standard library only: the worker imports this module too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REQUIRED = object()  # default for a parameter the caller must give


@dataclass(frozen=True)
class Param:
    """One experiment parameter: its type, default, bounds and help text."""

    name: str
    kind: type  # int, float, str or bool
    default: object
    help: str
    label: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    choice_help: dict[str, str] = field(default_factory=dict)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def schema(self) -> dict:
        """The JSON schema-ish description served by ``/api/experiments``."""
        out = {
            "name": self.name,
            "type": {int: "integer", float: "number", str: "string", bool: "boolean"}[self.kind],
            "label": self.label or self.name,
            "help": self.help,
            "required": self.required,
        }
        if not self.required:
            out["default"] = self.default
        if self.min is not None:
            out["minimum"] = self.min
        if self.max is not None:
            out["maximum"] = self.max
        if self.choices:
            out["enum"] = list(self.choices)
        return out


@dataclass(frozen=True)
class Metric:
    """One figure an experiment reports: name, unit and what it means."""

    name: str
    unit: str
    help: str

    def schema(self) -> dict:
        return {"name": self.name, "unit": self.unit, "help": self.help}


@dataclass(frozen=True)
class FieldError:
    """Why one field was refused; ``rule`` is machine-readable, ``message`` human."""

    field: str
    rule: str
    message: str

    def as_dict(self) -> dict:
        return {"field": self.field, "rule": self.rule, "message": self.message}


class ParamError(ValueError):
    """Raised by :func:`validate_or_raise`; carries every field error at once."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


MAX_UNKNOWN_REPORTED = 10
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(param: Param, raw: object) -> tuple[object, FieldError | None]:
    """Turn one raw value into the declared type, or say why it cannot be."""
    name = param.name

    def bad(rule: str, message: str):
        return None, FieldError(name, rule, f"{name} {message}")

    if param.kind is bool:
        if isinstance(raw, bool):
            return raw, None
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE, None
        return bad("type", "must be true or false")
    if param.kind in (int, float):
        if isinstance(raw, bool):  # bool is an int subclass; a checkbox is not a count
            return bad("type", f"must be {'a whole number' if param.kind is int else 'a number'}")
        if isinstance(raw, str):
            text = raw.strip()
            if not text:
                return bad("required", "is required")
            try:
                value = int(text) if param.kind is int else float(text)
            except ValueError:
                return bad("type", f"must be {'a whole number' if param.kind is int else 'a number'}, not {raw!r}")
        elif isinstance(raw, int) or (param.kind is float and isinstance(raw, float)):
            try:
                value = param.kind(raw)
            except OverflowError:  # an int too large for a float
                return bad("maximum", f"must be at most {_fmt(param.max)}" if param.max is not None else "is too large")
        elif isinstance(raw, float) and raw.is_integer():
            value = int(raw)
        else:
            return bad("type", f"must be {'a whole number' if param.kind is int else 'a number'}")
        if param.kind is float and value != value:  # NaN compares false with every bound
            return bad("type", "must be a number")
        if param.min is not None and value < param.min:
            return bad("minimum", f"must be at least {_fmt(param.min)}")
        if param.max is not None and value > param.max:
            return bad("maximum", f"must be at most {_fmt(param.max)}")
        return value, None
    if not isinstance(raw, str):
        return bad("type", "must be a string")
    if param.choices and raw not in param.choices:
        return bad("enum", f"must be one of {', '.join(param.choices)}")
    return raw, None


def _fmt(number: float) -> str:
    return f"{number:,}" if isinstance(number, int) else f"{number:g}"


def validate(params: tuple[Param, ...], raw: dict) -> tuple[dict, list[FieldError]]:
    """Validate ``raw`` against ``params``.

    Returns the full set of values (defaults filled in) and the list of errors;
    the values for fields in error are the defaults, so a page can still render
    the form. Unknown names are errors: a misspelt ``thread=8`` in a shared
    link must not silently run with the default.
    """
    by_name = {p.name: p for p in params}
    values: dict = {}
    errors: list[FieldError] = []
    unknown = [str(name) for name in raw if name not in by_name]
    known = ", ".join(by_name) or "none"
    for name in unknown[:MAX_UNKNOWN_REPORTED]:
        errors.append(
            FieldError(name[:80], "unknown", f"{name[:80]} is not a parameter of this experiment (known: {known})")
        )
    if len(unknown) > MAX_UNKNOWN_REPORTED:  # a flood of made-up names gets one line, not a megabyte
        rest = len(unknown) - MAX_UNKNOWN_REPORTED
        errors.append(FieldError("*", "unknown", f"and {rest} more names that are not parameters (known: {known})"))
    for param in params:
        if param.name not in raw or raw[param.name] is None:
            if param.required:
                errors.append(FieldError(param.name, "required", f"{param.name} is required"))
            values[param.name] = None if param.required else param.default
            continue
        value, error = _coerce(param, raw[param.name])
        if error:
            errors.append(error)
            value = None if param.required else param.default
        values[param.name] = value
    return values, errors


def validate_or_raise(params: tuple[Param, ...], raw: dict) -> dict:
    values, errors = validate(params, raw)
    if errors:
        raise ParamError(errors)
    return values
