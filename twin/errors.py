"""One error type for bad input, so the command line can show it without a traceback.

Every message names where the bad value came from (file or object), the field, the value
and what is allowed: the user should be able to fix the input from the message alone.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad configuration or input data, detected before anything runs."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        super().__init__(f"{source}: field '{field}': {problem}")


def from_pydantic(source: str, error: Exception) -> ConfigError:
    """Turn a pydantic ValidationError into a ConfigError naming the first bad field."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return ConfigError(source, "?", str(error))
    first = errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or "?"
    problem = first.get("msg", str(error))
    if first.get("type") == "extra_forbidden":
        problem = "unknown field (check its spelling against the documented fields)"
    elif "input" in first and not isinstance(first["input"], dict):
        problem = f"{problem} (got {first['input']!r})"
    return ConfigError(source, field, problem)
