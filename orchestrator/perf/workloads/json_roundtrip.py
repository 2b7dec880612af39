"""json.dumps / json.loads of nested documents (with and without indent)."""

from __future__ import annotations

import json

NAME = "json_roundtrip"
DOCS = 250


def _doc(i: int) -> dict[str, object]:
    return {
        "id": i,
        "name": f"user-{i:05d}",
        "email": f"user{i}@example.org",
        "active": i % 3 != 0,
        "score": i * 1.25,
        "tags": [f"t{j}" for j in range(i % 7)],
        "address": {"street": f"{i} Main St", "zip": f"{10000 + i}", "geo": [i / 7, -i / 11]},
        "history": [{"t": j, "v": j * i % 97, "note": "é✓" * (j % 3)} for j in range(12)],
    }


DATA = [_doc(i) for i in range(DOCS)]


def bench() -> object:
    total = 0
    for _ in range(3):
        text = json.dumps(DATA)
        total += len(json.loads(text))
        pretty = json.dumps(DATA, indent=2, sort_keys=True)
        total += len(json.loads(pretty)) + len(pretty)
    return total
