"""Keep other libraries' own output off the user's terminal while they work for edgekit.

onnxruntime's quantization calibrators `print` their progress ("Collecting tensor data and making
histogram ...") and log advice on the root logger; TensorFlow, onnx2tf and the TFLite interpreter
write C++ log lines ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.") straight to file
descriptor 2; tqdm draws progress bars. None of it is edgekit's, and it would break the promise
that stderr carries only `edgekit:` lines, progress and warnings (docs/results.md).

`library_output_hidden()` hides all of it for the duration of a block, at the source:

- file descriptors 1 and 2 point at a discarded temporary file, so C/C++ writes vanish;
- `sys.stderr` is a stream on the *real* stderr, so edgekit's own Python-level lines (progress,
  `edgekit: warning:`) printed meanwhile, from any thread, still reach the user; `sys.stdout` is
  discarded (the `print` calls of onnxruntime's calibrators and of onnx2tf; it carries `--json`);
- the loggers of onnxruntime, TensorFlow, absl and onnx2tf, and the root logger, are raised to
  CRITICAL (onnxruntime's quant_pre_process logs a failed optimisation's traceback at ERROR; a
  library failure reaches the user once, as edgekit's own one-line error);
  `TF_CPP_MIN_LOG_LEVEL=3` (TensorFlow's C++ logging) and `TQDM_DISABLE=1` are set;
- warnings raised in the block are recorded; an `EdgekitWarning` among them is issued again after
  it, others are dropped (the CLI would hide them anyway).

With `EDGEKIT_DEBUG` set nothing is hidden (Python-level stdout still goes to stderr). Blocks
nest (the inner one does nothing) and are serialised across threads.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator

from edgekit.core.errors import EdgekitWarning

LIBRARY_LOGGERS = ("", "onnxruntime", "tensorflow", "absl", "onnx2tf", "tf_keras", "h5py")
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TQDM_DISABLE": "1", "ABSL_MIN_LOG_LEVEL": "3"}

_lock = threading.RLock()
_depth = 0


@contextlib.contextmanager
def library_output_hidden() -> Iterator[None]:
    """Hide other libraries' output in the block (see the module docstring); nothing with
    EDGEKIT_DEBUG set. Raises nothing of its own; exceptions of the block pass through."""
    global _depth
    if os.environ.get("EDGEKIT_DEBUG"):  # all shown, but stdout stays --json's
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    with _lock:
        _depth += 1
        try:
            if _depth > 1:
                yield
                return
            with _fds_discarded(), _loggers_quiet(), _env_quiet(), _warnings_kept():
                yield
        finally:
            _depth -= 1


@contextlib.contextmanager
def _fds_discarded() -> Iterator[None]:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        saved = {fd: os.dup(fd) for fd in (1, 2)}
    except OSError:  # no real descriptors (an embedding host): Python-level hiding only
        saved = {}
    sink = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    old_stdout, old_stderr = sys.stdout, sys.stderr
    real_stderr: io.TextIOWrapper | None = None
    try:
        if saved:
            real_stderr = io.TextIOWrapper(
                os.fdopen(saved[2], "wb", closefd=False),
                encoding=getattr(old_stderr, "encoding", None) or "utf-8",
                errors="replace",
                line_buffering=True,
                write_through=True,
            )
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
        sys.stdout = io.StringIO()
        sys.stderr = real_stderr or old_stderr
        yield
    finally:
        sys.stdout, sys.stderr = old_stdout, old_stderr
        if real_stderr is not None:
            with contextlib.suppress(Exception):
                real_stderr.flush()
                real_stderr.detach()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        sink.close()


@contextlib.contextmanager
def _loggers_quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.CRITICAL))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _env_quiet() -> Iterator[None]:
    before = {name: os.environ.get(name) for name in QUIET_ENV}
    os.environ.update(QUIET_ENV)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _warnings_kept() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        warnings.simplefilter("default", EdgekitWarning)
        yield
    for item in caught:
        if issubclass(item.category, EdgekitWarning):
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
