"""Loading the results a reference names, for `compare`, `check` and the pytest plugin.

A reference names one or more results:
    results.json               a result file (`edgekit bench --json > results.json`), or a JSON list
    RUN_ID                     a stored run; a unique prefix of at least 4 characters is enough
    latest:DEVICE:MODEL[:N]    the newest stored run (or N newest, pooled) of MODEL on DEVICE
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.core.errors import UsageError
from edgekit.core.result import Result, load_result
from edgekit.store.base import ResultsStore

MIN_PREFIX = 4  # a shorter run id prefix is a usage error
MAX_CANDIDATES = 10  # an ambiguous prefix lists at most this many matching runs


def names_stored_runs(reference: str) -> bool:
    """Whether the reference names stored runs (a run id, latest:...), not a result file."""
    return not (reference.endswith(".json") or Path(reference).is_file())


def load_reference(reference: str, store: ResultsStore | None) -> list[Result]:
    """The results a reference names (see the module doc), upgraded to today's schema; UsageError
    when it names none, or a file that is not a result this edgekit can read (StoreError for a
    stored run it cannot read)."""
    if not names_stored_runs(reference):
        return _results_file(Path(reference))
    if store is None:
        raise UsageError(f"{reference!r}: not a result file, and no results store to look it up in")
    if reference.startswith("latest:"):
        parts = reference.split(":")
        if len(parts) not in (3, 4) or not all(parts[1:3]) or (len(parts) == 4 and not parts[3].isdigit()):
            raise UsageError(f"{reference!r}: expected latest:DEVICE:MODEL or latest:DEVICE:MODEL:N")
        count = int(parts[3]) if len(parts) == 4 else 1
        runs = store.runs(device=parts[1], model=parts[2], limit=count)
        if not runs:
            raise UsageError(f"{reference!r}: no stored run of model {parts[2]!r} on device {parts[1]!r}")
        return [run.result for run in runs]
    run = store.get(reference)
    if run is None:
        run = store.get(_unique_prefix(reference, store))
    if run is None:
        raise UsageError(f"{reference!r}: no such result file or stored run id (see `edgekit history`)")
    return [run.result]


def _unique_prefix(prefix: str, store: ResultsStore) -> str:
    """The one stored run id starting with prefix (or prefix itself when none does); UsageError
    when it is shorter than MIN_PREFIX or several runs start with it (listing up to
    MAX_CANDIDATES of them)."""
    if len(prefix) < MIN_PREFIX:
        raise UsageError(
            f"{prefix!r}: a run id prefix needs at least {MIN_PREFIX} characters (see `edgekit history`)"
        )
    ids = store.ids_with_prefix(prefix, limit=MAX_CANDIDATES + 1)
    if len(ids) > 1:
        more = len(ids) > MAX_CANDIDATES
        listed = ", ".join(ids[:MAX_CANDIDATES]) + (", ..." if more else "")
        count = f"more than {MAX_CANDIDATES}" if more else str(len(ids))
        raise UsageError(f"{prefix!r} is ambiguous: {count} runs start with it: {listed}")
    return ids[0] if ids else prefix


def _results_file(path: Path) -> list[Result]:
    """The results in a result file (one result, or a JSON list of them); UsageError when it cannot
    be read, is not UTF-8 JSON, holds no result (`[]`), or holds something that is not a result."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start}): not a result file") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON (truncated or not a result?): {exc}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise UsageError(f"{path}: no results in it")
    for item in items:
        if not isinstance(item, dict) or "latency_ms" not in item or "fingerprint" not in item:
            raise UsageError(f"{path}: not an edgekit result (no latency_ms/fingerprint)")
    return [
        load_result(item, str(path) if len(items) == 1 else f"{path} [{index}]")
        for index, item in enumerate(items)
    ]
