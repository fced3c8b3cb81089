"""The Debian mirror this machine's apt already uses, read from its sources (pure parsers + one reader).

`debootstrap` needs a mirror URI; edgekit never names one itself. It takes the first `deb`
source of Debian proper (not -security, -updates or -backports) from deb822 files
(`/etc/apt/sources.list.d/*.sources`, `URIs:`) or one-line files (`/etc/apt/sources.list`,
`*.list`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from edgekit.core.errors import MissingPrerequisiteError

APT_DIR = Path("/etc/apt")
_SKIPPED_SUITE = re.compile(r"-(security|updates|backports|proposed-updates)$|/updates$")


def _is_debian_main(uri: str, suites: list[str]) -> bool:
    path = uri.rstrip("/")
    if path.endswith("-security") or "debian-security" in path:
        return False
    return any(not _SKIPPED_SUITE.search(suite) for suite in suites) if suites else True


def parse_deb822(text: str) -> list[str]:
    """`deb` URIs of the enabled stanzas of a deb822 .sources file, in order."""
    uris: list[str] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[:1].isspace() and key:  # a continuation line
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        uris.extend(u for u in fields.get("uris", "").split() if _is_debian_main(u, suites))
    return uris


def parse_one_line(text: str) -> list[str]:
    """`deb` URIs of a one-line-style sources.list, in order (`deb [options] URI suite comps...`)."""
    uris: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[4:].strip()
        if rest.startswith("["):
            rest = rest.partition("]")[2].strip()
        parts = rest.split()
        if len(parts) >= 2 and _is_debian_main(parts[0], [parts[1]]):
            uris.append(parts[0])
    return uris


def debian_mirror_from(files: Iterable[tuple[str, str]]) -> str | None:
    """The first usable mirror URI from (file name, text) pairs; http(s) mirrors preferred."""
    uris: list[str] = []
    for name, text in files:
        uris.extend(parse_deb822(text) if name.endswith(".sources") else parse_one_line(text))
    web = [u for u in uris if u.startswith(("http://", "https://"))]
    chosen = (web or uris or [None])[0]
    return chosen.rstrip("/") if chosen else None


def apt_source_files(apt_dir: Path = APT_DIR) -> list[tuple[str, str]]:
    paths = [apt_dir / "sources.list"]
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        paths += sorted(p for p in parts.iterdir() if p.suffix in (".sources", ".list"))
    files = []
    for path in paths:
        try:
            files.append((path.name, path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    return files


def debian_mirror(apt_dir: Path = APT_DIR) -> str:
    """The Debian mirror of this machine's apt sources, or a typed error saying where it looked."""
    mirror = debian_mirror_from(apt_source_files(apt_dir))
    if mirror is None:
        raise MissingPrerequisiteError(
            f"no Debian mirror in {apt_dir}/sources.list or {apt_dir}/sources.list.d/*.sources "
            "(debootstrap needs one)",
            missing=["a Debian apt source"],
        )
    return mirror
