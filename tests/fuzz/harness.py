"""The fuzz suite's harness: the hypothesis profile, a throw-away workspace per case, the CLI run
as a user runs it (a real subprocess) and the checks every case must pass.

Every case runs in a fresh temp directory (removed afterwards) holding the generated input files,
``EDGEKIT_HOME``, the output path, ``TMPDIR`` and ``HOME``; the subprocess's working directory is
in there too. The tree is listed before and after the run: only the named output path and
``EDGEKIT_HOME`` may change (a temp file left in ``TMPDIR`` or a file dropped in the working
directory fails the case).

The profile is derandomised (the same cases on every run, no example database), so the suite is
reproducible in CI. ``EDGEKIT_FUZZ_SCALE=10`` multiplies every test's example count for a longer
local search.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[2]
FUZZ_DATA = Path(__file__).resolve().parent / "data"
ALLOWED_EXIT_CODES = {0, 1, 2, 3}
ERROR_PREFIX = "edgekit: error:"

settings.register_profile(
    "edgekit-fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
_SCALE = max(1, int(os.environ.get("EDGEKIT_FUZZ_SCALE", "1") or "1"))

# Every case each test generated (pytest prints them at the end: tests/fuzz/conftest.py).
CASES: dict[str, int] = {}
OUTCOMES: dict[str, int] = {}  # "test: outcome" -> cases (exit codes, reply types)


LAST_EXIT = [0]  # the exit code of the case's last run, for OUTCOMES


def fuzz(max_examples: int) -> settings:
    """The suite's settings with this test's share of the case budget."""
    return settings(settings.get_profile("edgekit-fuzz"), max_examples=max_examples * _SCALE)


def count_case(test: str, outcome: object = None) -> None:
    CASES[test] = CASES.get(test, 0) + 1
    if outcome is not None:
        key = f"{test}: {outcome}"
        OUTCOMES[key] = OUTCOMES.get(key, 0) + 1


@dataclass
class Workspace:
    root: Path
    home: Path = field(init=False)
    tmp: Path = field(init=False)
    cwd: Path = field(init=False)
    inputs: Path = field(init=False)
    user: Path = field(init=False)  # $HOME: a library writing to ~/.cache or ~/.config shows up

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        self.cwd = self.root / "cwd"
        self.inputs = self.root / "in"
        self.user = self.root / "user"
        for folder in (self.home, self.tmp, self.cwd, self.inputs, self.user):
            folder.mkdir()

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.inputs / name
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        path.write_bytes(data)
        return path


@contextmanager
def workspace() -> Iterator[Workspace]:
    root = Path(tempfile.mkdtemp(prefix="edgekit-fuzz-"))
    try:
        yield Workspace(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _tree(root: Path, skip: Sequence[Path]) -> dict[str, tuple[int, int, int]]:
    """Every file and folder under root but those under skip: path -> (mode, size, mtime_ns)."""
    listing: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not any(_under(here / d, s) for s in skip)]
        for name in dirnames + filenames:
            path = here / name
            if any(_under(path, s) for s in skip):
                continue
            st = path.lstat()
            folder = name in dirnames  # a folder's own mtime moves with an allowed file in it
            listing[str(path.relative_to(root))] = (
                st.st_mode,
                0 if folder else st.st_size,
                0 if folder else st.st_mtime_ns,
            )
    return listing


def _under(path: Path, top: Path) -> bool:
    return path == top or top in path.parents


def run_cli(
    ws: Workspace, args: Sequence[str], *, output: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run `edgekit ARGS` from this checkout in ws and check what every case must hold."""
    # The local device's machine-wide bench lock (edgekit/transport/local.py) stays, on purpose.
    allowed = [ws.home, ws.tmp / f"edgekit-local-{os.getuid()}.lock"] + (
        [output] if output is not None else []
    )
    before = _tree(ws.root, allowed)
    env = {k: v for k, v in os.environ.items() if k not in ("EDGEKIT_STORE", "EDGEKIT_DEBUG")}
    env.update(
        EDGEKIT_HOME=str(ws.home),
        TMPDIR=str(ws.tmp),
        HOME=str(ws.user),
        COLUMNS="200",
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        PYTHONDONTWRITEBYTECODE="1",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit.cli.main", *args],
        capture_output=True,
        text=True,
        errors="replace",
        env=env,
        cwd=ws.cwd,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    after = _tree(ws.root, allowed)
    check_outcome(proc, args)
    LAST_EXIT[0] = proc.returncode
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"edgekit {list(args)} wrote outside its output path: {changed}"
    return proc


def check_outcome(proc: subprocess.CompletedProcess[str], args: Sequence[str]) -> None:
    """Exit code 0-3 (never 70), no traceback, one `edgekit: error:` line when it failed (exit 2
    or 3), no request the agent refused as malformed."""
    where = f"edgekit {list(args)} -> exit {proc.returncode}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode in ALLOWED_EXIT_CODES, where
    assert "Traceback" not in proc.stderr, where
    # The host checks what it sends: an agent refusing the request means a check is missing (and
    # a usage error would surface as exit 3, a device failure).
    assert "failed: BadRequest" not in proc.stderr, where
    errors = [line for line in proc.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) <= 1, where
    if proc.returncode in (2, 3):
        assert len(errors) == 1, where
