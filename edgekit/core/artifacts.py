"""Artifacts: a model file (or an artifact directory with manifest.json) identified by sha256.

An ONNX model may keep its weights in external data files (each tensor's `location`, a path
relative to the model file's directory). Such an artifact is the model file plus those files:
`Artifact.files` lists them (the model first, then the data files sorted by location),
`size_bytes` is their sum, and `sha256` is `artifact_sha256(files)` (see there). A model without
external data is one file and its sha256 is that file's, as `sha256sum` prints it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import onnx
from google.protobuf.message import DecodeError

from edgekit.core.errors import ModelError

MANIFEST_NAME = "manifest.json"
_FORMAT_BY_SUFFIX = {".onnx": "onnx", ".tflite": "tflite"}


@dataclass(frozen=True)
class ArtifactFile:
    """One file of an artifact: `name` is its path relative to the model file's directory (the
    model's own file name, or an external data `location`), `path` where it is on this machine."""

    name: str
    path: Path
    sha256: str
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size_bytes": self.size_bytes}


@dataclass(frozen=True)
class Artifact:
    """`path`: the model file; `sha256` and `size_bytes` cover every file in `files` (the model
    first, then its external data files sorted by location; `files` is empty only for an
    Artifact built by hand, which then means the model file alone)."""

    path: Path
    sha256: str
    size_bytes: int
    format: str
    name: str
    recipe: list[Any] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    files: tuple[ArtifactFile, ...] = ()

    @property
    def suffix(self) -> str:
        return self.path.suffix

    @property
    def has_external_data(self) -> bool:
        return len(self.files) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "files": [f.to_dict() for f in self.files],
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


def artifact_sha256(files: Sequence[ArtifactFile]) -> str:
    """The sha256 (hex) of an artifact made of `files`, in their order (the model first, then its
    data files sorted by location). One file: that file's sha256. Several: the sha256 of the lines
    `<file sha256>  <name>\n`, one per file, which is what `sha256sum model.onnx DATA... | sha256sum`
    prints when run in the model's directory with the data files in that order."""
    if len(files) == 1:
        return files[0].sha256
    listing = "".join(f"{f.sha256}  {f.name}\n" for f in files)
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def model_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a graph holds: initializers, sparse initializers, Constant-style attributes,
    and those of its subgraphs (If/Loop/Scan bodies), recursively."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from model_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from model_tensors(subgraph)


def external_data_locations(model: onnx.ModelProto) -> list[str]:
    """The distinct external data `location`s a model refers to, sorted (as written: relative to
    the model file's directory, `/`-separated)."""
    locations: set[str] = set()
    for tensor in model_tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            locations.add(entries.get("location", ""))
    return sorted(locations)


def _checked_location(model_path: Path, location: str) -> Path:
    """The data file `location` names, which must be a relative path inside the model's directory
    and an existing regular file. Raises ModelError otherwise."""
    relative = PurePosixPath(location)
    if not location or relative.is_absolute() or ".." in relative.parts:
        raise ModelError(
            f"{model_path}: external data location {location!r} must be a relative path "
            "inside the model's directory",
            path=str(model_path),
        )
    data = model_path.parent.joinpath(*relative.parts)
    if not data.is_file():
        raise ModelError(
            f"{model_path}: external data file {location!r} not found next to the model (looked for {data})",
            path=str(model_path),
        )
    return data


def _file(name: str, path: Path) -> ArtifactFile:
    try:
        return ArtifactFile(name, path, sha256_file(path), path.stat().st_size)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read: {exc.strerror}", path=str(path)) from None


def artifact_files(model_path: Path) -> tuple[ArtifactFile, ...]:
    """The files of the model at `model_path`: itself, then for an ONNX model its external data
    files sorted by location. Raises ModelError for an unreadable file, a data file that is missing
    or a location outside the model's directory (a corrupt ONNX file is left to the ONNX reader,
    which names the fault: here it counts as one file)."""
    files = [_file(model_path.name, model_path)]
    if model_path.suffix.lower() != ".onnx":
        return tuple(files)
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError):
        return tuple(files)
    for location in external_data_locations(model):
        files.append(_file(location, _checked_location(model_path, location)))
    return tuple(files)


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
    """Resolve a model file or artifact directory; the file, and an ONNX model's external data files
    next to it, must exist and be readable (else ModelError, exit 2)."""
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
    files = artifact_files(model_path)
    sha = artifact_sha256(files)
    size = sum(f.size_bytes for f in files)
    if manifest is not None:
        expected = manifest["artifact"].get("sha256")
        if expected and expected != sha:
            raise ModelError(
                f"{model_path}: sha256 {sha[:12]}... does not match the manifest's {str(expected)[:12]}...",
                path=str(model_path),
            )
    recipe = manifest.get("recipe", []) if manifest else []
    return Artifact(model_path, sha, size, fmt, name, list(recipe), manifest, files)
