"""Convert a MaskablePPO ``model.zip`` of your own training into the safe policy folder.

SB3's zip is pickled, so loading it runs whatever code it carries: that is fine for a
file you just trained, and the reason the twin never loads one. This script loads such a
trusted zip once, with SB3, and writes what the twin loads (:mod:`agents.policy_format`):
``manifest.json`` + ``policy.pt``. A ``manifest.json`` already beside the zip (what
``skytwin train`` wrote: scenario, steps, seed, the command) is kept in the new one.

    python -m agents.convert_policy runs/ppo/model.zip            # writes runs/ppo/
    python -m agents.convert_policy old/model.zip --out agents/trained/my-policy
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from agents import policy_format as PF


def convert_zip(zip_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write ``out_dir`` (default: the zip's folder) in the safe format from a TRUSTED
    ``zip_path``; returns the new manifest.json's path."""
    from sb3_contrib import MaskablePPO

    zip_path = Path(zip_path)
    out = Path(out_dir) if out_dir is not None else zip_path.parent
    beside = zip_path.parent / PF.MANIFEST
    info = json.loads(beside.read_text()) if beside.is_file() else {}
    model = MaskablePPO.load(zip_path, device="cpu")  # unpickles: trusted input only
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    info["converted_from"] = {"file": zip_path.name, "sha256": digest}
    return PF.export_model(model, out, info)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.convert_policy",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("model", help="a model.zip you trained (it is unpickled)")
    parser.add_argument("--out", help="output folder (default: the zip's folder)")
    args = parser.parse_args(argv)
    path = convert_zip(args.model, args.out)
    print(f"policy: {path.parent} ({PF.MANIFEST} + {PF.WEIGHTS}); "
          f"try it: skytwin run SCENARIO --policy {path.parent}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
