"""Generate the JSON Schemas in docs/schema/ from edgekit's typed models, or check they match.

    python scripts/schemas.py --write    # regenerate docs/schema/*.schema.json
    python scripts/schemas.py --check    # exit 1 when a committed schema differs from its model

The models are the source of truth; the files are generated (never edit them by hand). A test
runs --check, so a model change without regenerated schemas fails the suite.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "docs" / "schema"
# The models of this checkout, whatever edgekit is installed.
sys.path.insert(0, str(ROOT))

# schema file stem -> "module:attribute" of a function returning the JSON Schema (a dict).
SCHEMAS: dict[str, str] = {
    "result": "edgekit.core.result:result_json_schema",
    "profile": "edgekit.core.profiles:profile_json_schema",
    "inventory": "edgekit.transport.inventory:inventory_json_schema",
    "fleet-plan": "edgekit.measure.fleet:plan_json_schema",
    "train-config": "edgekit.train.config:train_config_json_schema",
}


def generate() -> dict[str, str]:
    """Schema file name -> its text (sorted keys, 2-space indent, trailing newline)."""
    out = {}
    for stem, target in SCHEMAS.items():
        module, _, attribute = target.partition(":")
        schema: dict[str, Any] = getattr(importlib.import_module(module), attribute)()
        out[f"{stem}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    generated = generate()
    if args.write:
        SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
        for name, text in generated.items():
            (SCHEMA_DIR / name).write_text(text)
        return 0
    stale = [
        name
        for name, text in generated.items()
        if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text() != text
    ]
    for name in stale:
        print(f"docs/schema/{name} is stale: run python scripts/schemas.py --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
