"""Artifacts: a model file (or an artifact directory with manifest.json) identified by sha256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core.errors import ModelError

MANIFEST_NAME = "manifest.json"
_FORMAT_BY_SUFFIX = {".onnx": "onnx", ".tflite": "tflite"}


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str
    size_bytes: int
    format: str
    name: str
    recipe: list[Any] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    @property
    def suffix(self) -> str:
        return self.path.suffix

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "format": self.format,
            "recipe": self.recipe,
            "name": self.name,
            "path": str(self.path),
            "source_name": source_name(self.manifest),
            "quality": quality_summary(self.manifest),
        }


def source_name(manifest: dict[str, Any] | None) -> str | None:
    """The name of the model an artifact was compressed from (None for a plain model file)."""
    source = (manifest or {}).get("source") or {}
    return Path(str(source["path"])).stem if source.get("path") else None


def quality_summary(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    """What compression cost, from the manifest's fidelity report: accuracy after and its drop in
    points (with labelled data), top-1 agreement and mean cosine with the source model."""
    fidelity = (manifest or {}).get("fidelity")
    if not isinstance(fidelity, dict):
        return None
    accuracy = fidelity.get("accuracy") or {}
    return {
        "accuracy": accuracy.get("after"),
        "accuracy_drop_points": accuracy.get("drop_points"),
        "top1_agreement": fidelity.get("top1_agreement"),
        "cosine_mean": fidelity.get("cosine_mean"),
    }


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _read_manifest(directory: Path) -> dict[str, Any]:
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ModelError(
            f"{directory}: a directory is accepted only as an artifact directory with {MANIFEST_NAME}",
            path=str(directory),
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{manifest_path}: unreadable manifest: {exc}", path=str(manifest_path)) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("artifact"), dict):
        raise ModelError(f"{manifest_path}: manifest has no 'artifact' object", path=str(manifest_path))
    return manifest


def _model_format(path: Path) -> str:
    fmt = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise ModelError(
            f"{path}: unsupported model file type {path.suffix or '(none)'!r}; "
            f"expected one of {', '.join(_FORMAT_BY_SUFFIX)}",
            path=str(path),
        )
    return fmt


def load_artifact(path: Path) -> Artifact:
    """Resolve a model file or artifact directory; the file must exist and be readable."""
    manifest: dict[str, Any] | None = None
    if path.is_dir():
        manifest = _read_manifest(path)
        file_name = manifest["artifact"].get("file")
        if not isinstance(file_name, str) or Path(file_name).name != file_name:
            raise ModelError(f"{path}/{MANIFEST_NAME}: artifact.file must be a file name", path=str(path))
        model_path = path / file_name
        name = path.name
    else:
        model_path = path
        name = path.stem
    if not model_path.exists():
        raise ModelError(f"{model_path}: no such file", path=str(model_path))
    if not model_path.is_file():
        raise ModelError(f"{model_path}: not a regular file", path=str(model_path))
    fmt = _model_format(model_path)
    try:
        sha = sha256_file(model_path)
        size = model_path.stat().st_size
    except OSError as exc:
        raise ModelError(f"{model_path}: cannot read: {exc.strerror}", path=str(model_path)) from None
    if manifest is not None:
        expected = manifest["artifact"].get("sha256")
        if expected and expected != sha:
            raise ModelError(
                f"{model_path}: sha256 {sha[:12]}... does not match the manifest's {str(expected)[:12]}...",
                path=str(model_path),
            )
    recipe = manifest.get("recipe", []) if manifest else []
    return Artifact(model_path, sha, size, fmt, name, list(recipe), manifest)
