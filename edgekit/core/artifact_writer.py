"""Writing an artifact directory (`compress`, `train`): stage beside the target, write
`manifest.json`, publish by rename so a reader sees the directory whole or not at all."""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.core.artifacts import MANIFEST_NAME, sha256_file
from edgekit.core.errors import UsageError

ARTIFACT_STEM = "model"  # model.onnx, or model.tflite after tflite-int8


def tool_versions() -> dict[str, str | None]:
    """Versions of edgekit, Python, onnx, onnxruntime and numpy (None when not installed)."""

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "edgekit": __version__,
        "python": platform.python_version(),
        **{name: version(name) for name in ("onnx", "onnxruntime", "numpy")},
    }


def prepare_out_dir(out_dir: Path, force: bool) -> Path:
    """A fresh staging directory beside `out_dir` (same file system, so `publish` is a rename).

    Raises UsageError when `out_dir` exists and is not empty and `force` is false."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not force:
        raise UsageError(f"-o {out_dir}: exists and is not empty; pass --force to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))


@contextmanager
def staged_artifact_dir(out_dir: Path, force: bool) -> Iterator[Path]:
    """Yield a staging directory to fill; on leaving the block normally it is published as
    `out_dir` (whole, by rename), on any exception (Ctrl-C included) it is removed.

    Raises UsageError when `out_dir` exists and is not empty and `force` is false."""
    staging = prepare_out_dir(out_dir, force)
    try:
        yield staging
        publish(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """`directory/manifest.json`: the manifest as indented JSON (values JSON cannot hold as text)."""
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, default=str) + "\n")


def publish(staging: Path, out_dir: Path) -> None:
    """Atomic from a reader's point of view: the directory appears whole or not at all."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{staging.name.rsplit('-', 1)[-1]}")
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out_dir)


def artifact_manifest(
    artifact: Path,
    source: dict[str, Any],
    *,
    target: str,
    recipe: Any,
    fidelity: dict[str, Any] | None,
    accuracy_guard: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """manifest.json of an artifact directory (`compress`, `train`): the file, what it was made
    from (`source`: path, sha256, size_bytes), how, and what it cost; `extra` keys go before
    `tools`, whose versions `extra["tools"]` may add to."""
    tools = {**tool_versions(), **extra.pop("tools", {})}
    return {
        "schema": 1,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "artifact": {
            "file": artifact.name,
            "sha256": sha256_file(artifact),
            "size_bytes": artifact.stat().st_size,
            "format": artifact.suffix.lstrip("."),
        },
        "source": source,
        "size_ratio": source["size_bytes"] / max(artifact.stat().st_size, 1),
        "target": target,
        "recipe": recipe,
        "fidelity": fidelity,
        "fidelity_null_reason": None if fidelity else "no --eval or --calib data given",
        "accuracy_guard": accuracy_guard,
        **extra,
        "tools": tools,
    }
