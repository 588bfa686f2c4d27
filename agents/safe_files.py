"""Read the files users hand us (``--policy PATH``, a scenario's ``operations.policy``)
without running anything in them.

A saved policy is data: JSON (a manifest, a scorer) and tensors read by
``torch.load(..., weights_only=True)``. Pickles, and the zip archives that wrap them
(Stable-Baselines3's ``model.zip``, a torch checkpoint loaded in full), can execute code
when loaded, so a crafted file passed as a policy would run as the user who runs the twin.
They are recognised here by their first bytes and refused before any loader sees them.

Every refusal is a :class:`~twin.errors.ConfigError` naming the file and what is allowed;
a message never quotes more of a file than :func:`excerpt` (a short ``repr``), so a binary
or hostile file cannot fill the terminal or smuggle control characters into it.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

from twin.errors import ConfigError

MAX_JSON_BYTES = 1_000_000
"""Largest manifest or scorer read (ours are a few kB); a bigger file is refused."""
EXCERPT_CHARS = 80
"""Most characters of a file's content any message shows."""
CONVERT_HINT = (
    "if you trained it yourself, convert it with `python -m agents.convert_policy FILE` "
    "(or retrain: `skytwin train` writes manifest.json + policy.pt)"
)
"""What to do with a pickled model of our own training."""


def excerpt(data: bytes | str) -> str:
    """``repr`` of the start of ``data``, at most :data:`EXCERPT_CHARS` characters."""
    text = repr(data[:EXCERPT_CHARS])
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "..."


def file_kind(path: Path) -> str:
    """What ``path`` holds, judged from its first bytes (never by loading it):
    ``"sb3-zip"``, ``"torch-zip"``, ``"zip"``, ``"pickle"``, ``"json"``, ``"binary"`` or
    ``"text"``. An unreadable file raises :class:`OSError`."""
    with path.open("rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if b"\x00" in head or not _decodes(head):
        return "binary"
    return "json" if head.lstrip()[:1] in (b"{", b"[") else "text"


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:  # the member list only: nothing is unpickled
            names = archive.namelist()
    except zipfile.BadZipFile:
        return "binary"
    if "data" in names and "policy.pth" in names:
        return "sb3-zip"
    if any(name.endswith("data.pkl") for name in names):
        return "torch-zip"
    return "zip"


def _decodes(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:  # a multi-byte character cut at 512 bytes is fine
        return err.start >= len(head) - 3
    return True


SB3_ZIP = ("a Stable-Baselines3 model.zip, which is pickled (loading it can run code from "
           "the file), not a trusted format")  # fmt: skip
KIND_PROBLEMS = {
    "sb3-zip": SB3_ZIP + "; " + CONVERT_HINT,
    "torch-zip": "a torch pickle archive, not a trusted format on its own; pass the folder "
    "that holds it with its manifest.json",
    "zip": "a zip archive, not a saved policy",
    "pickle": "a Python pickle (loading it can run code from the file), not a trusted "
    "format; " + CONVERT_HINT,
    "binary": "a binary file, not a saved policy",
}
"""Why each kind of file that is not JSON is refused as a policy (``FILE``: its path)."""


def kind_problem(kind: str, path: Path) -> str:
    """:data:`KIND_PROBLEMS` of ``kind``, naming ``path`` in the hint."""
    return KIND_PROBLEMS[kind].replace("FILE", str(path))


def read_json(path: Path, what: str, field: str = "policy") -> dict[str, Any]:
    """The JSON object in ``path``; NaN and infinities are refused (JSON has none, Python's
    parser accepts them). Problems raise ConfigError(path, ``field``, ...) calling the file
    a ``what`` ("scorer file", "policy manifest")."""
    source = str(path)
    try:
        kind = file_kind(path)
        size = path.stat().st_size
        if kind != "json" and kind != "text":
            raise ConfigError(source, field, kind_problem(kind, path))
        if size > MAX_JSON_BYTES:
            raise ConfigError(source, field, f"not a readable {what}: {size} bytes, more "
                              f"than the {MAX_JSON_BYTES} allowed")  # fmt: skip
        text = path.read_bytes().decode("utf-8")
        record = json.loads(text, parse_constant=_no_constant)
    except OSError as err:
        raise ConfigError(source, field, f"not a readable {what} ({_os_reason(err)})") from None
    except UnicodeDecodeError:
        raise ConfigError(source, field, f"not a readable {what}: not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise ConfigError(source, field, f"not a readable {what}: invalid JSON at line "
                          f"{err.lineno} column {err.colno} ({err.msg})") from None  # fmt: skip
    except ValueError as err:  # _no_constant
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(source, field, f"not a readable {what}: {err}") from None
    if not isinstance(record, dict):
        raise ConfigError(source, field, f"not a readable {what}: expected a JSON object, "
                          f"got {type(record).__name__}")  # fmt: skip
    return record


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number (give a finite value)")


def _os_reason(err: OSError) -> str:
    return err.strerror or type(err).__name__


def finite_number(value: Any, source: str, field: str) -> float:
    """``value`` as a float if it is a finite JSON number (not a bool), else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(source, field, f"must be a number, got {excerpt(str(value))} "
                          f"({type(value).__name__})")  # fmt: skip
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(source, field, f"must be finite, got {number}")
    return number


def os_problem(err: OSError) -> str:
    """A ConfigError problem for a file that exists but cannot be read."""
    return f"cannot read it ({_os_reason(err)})"
