"""Writing an artifact directory (`compress`, `train`): stage beside the target, write
`manifest.json`, publish by rename so a reader sees the directory whole or not at all."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import onnx

from edgekit import __version__
from edgekit.core.artifacts import MANIFEST_NAME, artifact_files, artifact_sha256
from edgekit.core.errors import UsageError
from edgekit.core.onnx_model import has_external_data, save_onnx

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


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)  # reading the umask means setting it; put it straight back
    return umask


def default_dir_mode() -> int:
    """The mode `mkdir` gives a new directory under the process's umask: 0o777 & ~umask."""
    return 0o777 & ~_umask()


def default_file_mode() -> int:
    """The mode `open(..., "w")` gives a new file under the process's umask: 0o666 & ~umask."""
    return 0o666 & ~_umask()


def make_dir(directory: Path, named: Path | None = None) -> None:
    """mkdir -p `directory` for the output path `named` (default: the directory itself). Raises
    UsageError (exit 2, naming `-o named`) when a component is a file or nothing can be created
    there (a read-only or virtual file system, no permission)."""
    named = named or directory
    blocking = next((p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise UsageError(f"-o {named}: {blocking} exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"-o {named}: cannot write there: {exc.strerror or exc}") from None


def prepare_out_dir(out_dir: Path, force: bool) -> Path:
    """A fresh staging directory beside `out_dir` (same file system, so `publish` is a rename),
    with the user's normal directory mode (`default_dir_mode`, not mkdtemp's private 0700: the
    published artifact directory is the user's, to share like any other).

    Raises UsageError when `out_dir` exists and is not a directory (with `force` too), exists
    and is not empty and `force` is false, and when nothing can be created beside it (a parent
    that is a file, a read-only or virtual file system, no permission)."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        # --force replaces an artifact directory, never a file, a device (-o /dev/null as root
        # replaced the device with a directory) or what a link points to.
        raise UsageError(f"-o {out_dir}: exists and is not a directory; name a directory to write")
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise UsageError(f"-o {out_dir}: exists and is not empty; pass --force to replace it")
    make_dir(out_dir.parent, out_dir)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as exc:
        raise UsageError(f"-o {out_dir}: cannot write there: {exc.strerror or exc}") from None
    staging.chmod(default_dir_mode())
    return staging


def copy_model(source: Path, dest: Path, *, external_data: bool) -> list[str]:
    """Write the ONNX model at `source` (its external data resolved next to it) as `dest`; returns
    the external data file names written beside `dest` (empty for one file).

    With `external_data` false and no external data in `source`, a byte copy. Otherwise the model
    is saved with every tensor of 1 KiB or more in one file `<dest name>.data` next to `dest`
    (onnx.save_model's external data format), which a model over protobuf's 2 GB limit needs and
    which keeps a source's large weights outside the model file as they were. TFLite files are
    copied as they are. Raises OSError when the files cannot be written."""
    external = source.suffix == ".onnx" and has_external_data(source)
    if dest.suffix != ".onnx" or not (external_data or external):
        (dest.parent / f"{dest.name}.data").unlink(missing_ok=True)  # a replaced artifact's old weights
        shutil.copyfile(source, dest)
        return []
    model = onnx.load(str(source))  # external data read from source's own directory
    written = save_onnx(model, dest, external=True)
    for name in written:  # onnx writes external data 0600; the artifact is the user's
        (dest.parent / name).chmod(default_file_mode())
    return written


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
    """manifest.json of an artifact directory (`compress`, `train`): the file, its `files` (the
    model, then its external data files; sha256 and size_bytes cover them all, as
    edgekit.core.artifacts.artifact_sha256 defines), what it was made from (`source`: path,
    sha256, size_bytes), how, and what it cost; `extra` keys go before `tools`, whose versions
    `extra["tools"]` may add to."""
    tools = {**tool_versions(), **extra.pop("tools", {})}
    files = artifact_files(artifact)
    size_bytes = sum(f.size_bytes for f in files)
    return {
        "schema": 1,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "artifact": {
            "file": artifact.name,
            "sha256": artifact_sha256(files),
            "size_bytes": size_bytes,
            "format": artifact.suffix.lstrip("."),
            "files": [f.to_dict() for f in files],
        },
        "source": source,
        "size_ratio": source["size_bytes"] / max(size_bytes, 1),
        "target": target,
        "recipe": recipe,
        "fidelity": fidelity,
        "fidelity_null_reason": None if fidelity else "no --eval or --calib data given",
        "accuracy_guard": accuracy_guard,
        **extra,
        "tools": tools,
    }
