"""The TensorRT engine cache on the board: `<workdir>/trt-cache/<key>` (docs/protocol.md, `bench`
result `runtime.engine_cache`).

`key` is the first 16 hex digits of a sha256 over the artifact's sha256, the TensorRT version and
the provider options (sorted key=value, the cache paths left out), so a changed model, TensorRT
or option (fp16, workspace, ...) builds its own engine. onnxruntime's TensorRT provider writes the
engine (`*.engine`) and the timing cache (`*.timing`) there when `trt_engine_cache_enable` and
`trt_timing_cache_enable` are on (its documented provider options); the run is a `hit` when the
directory held an engine before the session was created. `fresh_engine` deletes the directory
first. After the session, the directory is touched (its mtime is its last use) and the least
recently used other directories are deleted until the cache is at most `engine_cache_max_mb`.
A user's own `trt_engine_cache_path` is left alone: no managed cache then (engine_cache null).

Nothing here runs before the providers are resolved: a TensorRT that is missing is
ProviderMissing with nothing written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

CACHE_ROOT = "trt-cache"  # under the agent's workdir
DEFAULT_MAX_MB = 2048.0
ENGINE_SUFFIX = ".engine"
PATH_OPTIONS = ("trt_engine_cache_path", "trt_timing_cache_path")
# The staged artifact's own name carries its sha256: <workdir>/artifacts/<sha256>.<ext> or
# <workdir>/artifacts/<sha256>/<model> (edgekit/transport/ssh.py, the host verified the hash).
STAGED_RE = re.compile(r"(?:^|/)artifacts/([0-9a-f]{64})(?:/[^/]+|\.[A-Za-z0-9]+)$")


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    """The sha256 (hex) of a file, read in `chunk`-byte blocks. Raises OSError."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_sha256(path: str) -> str:
    """The artifact's sha256: taken from its staged name (artifacts/<sha256>...) when it has one,
    else hashed (streaming). Raises OSError when it must be read and cannot."""
    match = STAGED_RE.search(os.path.abspath(path).replace(os.sep, "/"))
    return match.group(1) if match else file_sha256(path)


def cache_key(sha256: str, trt_version: str, options: Dict[str, str]) -> str:
    """16 hex digits over (artifact sha256, TensorRT version, options without the cache paths)."""
    kept = {str(k): str(v) for k, v in options.items() if k not in PATH_OPTIONS}
    text = json.dumps([sha256, trt_version, sorted(kept.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def with_cache_options(options: Dict[str, str], directory: str) -> Dict[str, str]:
    """The provider options with the engine and timing cache on in `directory`, where the user
    did not set them."""
    merged = dict(options)
    for key, value in (
        ("trt_engine_cache_enable", "1"),
        ("trt_engine_cache_path", directory),
        ("trt_timing_cache_enable", "1"),
        ("trt_timing_cache_path", directory),
    ):
        merged.setdefault(key, value)
    return merged


def has_engine(directory: str) -> bool:
    """A TensorRT engine file (*.engine) is in `directory` (not recursive)."""
    try:
        return any(name.endswith(ENGINE_SUFFIX) for name in os.listdir(directory))
    except OSError:
        return False


def tree_size(directory: str) -> int:
    """Bytes of the regular files under `directory` (0 when it is gone)."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(OSError):  # deleted meanwhile
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def eviction_plan(entries: List[Tuple[str, float, int]], max_bytes: int, keep: str) -> List[str]:
    """Names to delete, least recently used first, until the total is at most max_bytes.
    entries: (name, mtime in s, size in bytes); `keep` (the directory in use) is never deleted,
    even when it alone is over the cap."""
    total = sum(size for _name, _mtime, size in entries)
    plan = []
    for name, _mtime, size in sorted(entries, key=lambda e: (e[1], e[0])):
        if total <= max_bytes:
            break
        if name == keep:
            continue
        plan.append(name)
        total -= size
    return plan


def tensorrt_version() -> str:
    """The TensorRT version: its Python package (pip `tensorrt` or JetPack's python3-libnvinfer),
    else the soname of libnvinfer ("10" from libnvinfer.so.10), else "unknown"."""
    try:
        from importlib import metadata

        for package in ("tensorrt", "tensorrt-cu12", "tensorrt_libs"):
            try:
                return metadata.version(package)
            except Exception:
                continue
    except ImportError:
        pass
    import ctypes.util

    found = ctypes.util.find_library("nvinfer")
    if found:
        match = re.search(r"\.so\.([\d.]+)$", found)
        if match:
            return match.group(1)
    return "unknown"


class EngineCache(NamedTuple):
    workdir: str
    directory: str  # absolute: <workdir>/trt-cache/<key>
    hit: bool

    @property
    def relative(self) -> str:
        return os.path.relpath(self.directory, self.workdir)


def open_cache(
    workdir: str, sha256: str, trt_version: str, options: Dict[str, str], fresh: bool
) -> EngineCache:
    """Create (or reuse) the cache directory of this artifact/TensorRT/options; with `fresh` its
    old content is deleted first. Raises OSError when the workdir is not writable."""
    directory = os.path.join(workdir, CACHE_ROOT, cache_key(sha256, trt_version, options))
    if fresh and os.path.isdir(directory):
        shutil.rmtree(directory)
    hit = has_engine(directory)
    os.makedirs(directory, exist_ok=True)
    return EngineCache(workdir, directory, hit)


def close_cache(cache: EngineCache, max_mb: float) -> Dict[str, Any]:
    """After the session: mark the directory used now, evict the least recently used others
    beyond max_mb (MiB), and the reply's engine_cache {dir, hit, size_bytes, evicted}."""
    now = time.time()
    os.utime(cache.directory, (now, now))
    root = os.path.dirname(cache.directory)
    entries = []
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            entries.append((name, os.stat(path).st_mtime, tree_size(path)))
    evicted = eviction_plan(entries, int(max_mb * 1024 * 1024), os.path.basename(cache.directory))
    for name in evicted:
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    return {
        "dir": cache.relative,
        "hit": cache.hit,
        "size_bytes": tree_size(cache.directory),
        "evicted": len(evicted),
    }


def relative_options(options: Dict[str, str], cache: Optional[EngineCache]) -> Dict[str, str]:
    """The options as reported: the managed cache paths relative to the workdir."""
    if cache is None:
        return options
    return {
        k: (cache.relative if k in PATH_OPTIONS and v == cache.directory else v) for k, v in options.items()
    }
