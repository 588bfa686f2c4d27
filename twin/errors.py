"""One error type for bad input, so the command line can show it without a traceback.

Every message names where the bad value came from (file or object), the field, the value
and what is allowed: the user should be able to fix the input from the message alone.

A message is one line of bounded length whatever the input: a value is quoted as a short,
escaped excerpt (:func:`excerpt`), never in full. A hostile input (a YAML alias bomb, a
binary file given as a weather log, a field name with control characters) must not turn
the error itself into the failure: a 700 MB message, or one that echoes a secret file.
"""

from __future__ import annotations

import re
import reprlib
from typing import Annotated

from pydantic import AfterValidator

EXCERPT_CHARS = 80
"""Longest quotation of an input value in a message, characters."""

PROBLEM_CHARS = 600
"""Longest problem text of a :class:`ConfigError` (allowed-value lists included)."""

_REPR = reprlib.Repr()  # Python 3.11 takes no constructor arguments
_REPR.maxlevel = 3
_REPR.maxtuple = _REPR.maxlist = _REPR.maxarray = _REPR.maxdict = 4
_REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = 4
_REPR.maxstring = _REPR.maxother = EXCERPT_CHARS
_REPR.maxlong = 40
_PLAIN_PART = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""Names that become file or directory names (scenario, site, telescope, filter): letters,
digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters, no '..'.
Why: a run directory is ``runs/<scenario>-...`` and a frame ``frames/<site>/<telescope>_N``;
a name such as ``../../x`` would write outside them."""
_SAFE_NAME = re.compile(SAFE_NAME)


def check_safe_name(value: str) -> str:
    """``value`` if it matches :data:`SAFE_NAME` and has no '..'; else a ValueError."""
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or ".." in value:
        raise ValueError(
            f"{excerpt(value)} is not allowed as a name; allowed: {SAFE_NAME} "
            "(letters, digits, '.', '_', '-'; no '..'), as it becomes a file name"
        )
    return value


SafeName = Annotated[str, AfterValidator(check_safe_name)]
"""A pydantic ``str`` field restricted to :data:`SAFE_NAME`."""


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A short, escaped ``repr`` of ``value``: at most ``limit`` characters, one line.

    reprlib bounds the work for deep or huge containers (it looks at a few items of a few
    levels), so quoting a billion-element structure costs microseconds.
    """
    try:
        text = _REPR.repr(value)
    except Exception:  # a hostile __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(text: str) -> str:
    """Escape control characters (newlines included), so a message stays one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def shorten(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line (control characters escaped), cut to ``limit`` characters."""
    text = _one_line(str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConfigError(ValueError):
    """Bad configuration or input data, detected before anything runs.

    Its args are ``(source, field, problem)``: SimPy re-raises an exception from inside a
    process as ``type(exc)(*exc.args)``, so the error must be rebuilt from its args alone.
    """

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = shorten(str(source), 300)
        self.field = shorten(str(field), 200)
        self.problem = shorten(str(problem), PROBLEM_CHARS)
        super().__init__(self.source, self.field, self.problem)

    def __str__(self) -> str:
        return f"{self.source}: field '{self.field}': {self.problem}"


class FieldProblem(ValueError):
    """A check across fields, raised inside a pydantic validator, naming the field to blame.

    Why: pydantic reports a model validator's error at the model itself (an empty location
    at the top level, shown as ``field '?'``). ``field`` is a dotted path relative to the
    model that raised it; :func:`from_pydantic` appends it to pydantic's location.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(problem)


def field_path(loc: tuple | list) -> str:
    """pydantic's location as a dotted path; odd parts (a key with spaces) are quoted."""
    parts = []
    for part in loc:
        text = str(part)
        parts.append(text if _PLAIN_PART.fullmatch(text) else excerpt(text, 40))
    return ".".join(parts)


def from_pydantic(source: str, error: Exception) -> ConfigError:
    """Turn a pydantic ValidationError into a ConfigError naming the first bad field."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return ConfigError(source, "(input)", shorten(str(error), PROBLEM_CHARS))
    first = errors(include_url=False)[0]
    loc = list(first.get("loc", ()))
    problem = first.get("msg", "invalid value")
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblem):
        loc.extend(cause.field.split(".") if cause.field else [])
        problem = str(cause)
    field = field_path(loc) or "(top level)"
    if first.get("type") == "extra_forbidden":
        problem = "unknown field (check its spelling against the documented fields)"
    elif first.get("type") != "value_error" and not isinstance(first.get("input"), dict | None):
        # Our validators' messages (value_error) quote the value themselves.
        problem = f"{problem} (got {excerpt(first['input'])})"
    return ConfigError(source, field, problem)
