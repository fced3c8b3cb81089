"""A real headless Chromium, to look at edgekit's HTML pages as a person would."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# A closed network: Chromium's background services would only try and fail to phone home.
QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def chromium_missing_reason() -> str | None:
    if chromium() is None:
        return "Chromium not installed (scripts/test installs Debian's chromium when run as root)"
    return None


def screenshot(page: Path, png: Path, profile_dir: Path, width: int = 1100, height: int = 2400) -> Path:
    """Render a local page in headless Chromium and save what it shows as a PNG."""
    binary = chromium()
    if binary is None:
        raise RuntimeError(str(chromium_missing_reason()))
    proc = subprocess.run(
        [
            binary,
            *QUIET_FLAGS,
            f"--user-data-dir={profile_dir}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return png
