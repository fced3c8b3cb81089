"""Runs ON THE BOARD, started once per connection as `python -c <this file> serve WORKDIR`, and
once per file uploaded without SFTP as `python -c <this file> receive PATH.part OFFSET`.

It first prints {"workdir": expanded WORKDIR, "python": "3.11"}, then answers one JSON line per
request line, so staging costs no extra SSH command (each would start the user's shell) per file:

    {"op": "check", "path", "sha256"}          -> {"cached", "part_bytes", "free_bytes"}
        makes path's directory; says whether path already holds sha256, how much of path.part an
        earlier upload left (to resume from), and the free space there.
    {"op": "commit", "path", "sha256", "size"} -> {"ok", "part_bytes"}
        renames path.part to path atomically if and only if it holds exactly sha256; a .part of
        the full size with other content is corrupt and removed (a shorter one is kept to resume).
    {"op": "remove", "path"}                   -> {"removed"}
        removes path if it exists (a partial upload the board has no room to finish).

`receive PATH.part OFFSET` (for sshd without an SFTP subsystem) cuts PATH.part to OFFSET bytes,
appends its stdin to it up to end of file and prints {"part_bytes"}, or {"error"} when a write
fails (a full disk: then the rest of stdin is read and dropped, so the sender finishes cleanly).

Standard library only, and old syntax on purpose: it must run and report the version of any
Python the board has, even one too old for the agent.
"""

import hashlib
import json
import os
import sys


def file_sha256(path):  # type: (str) -> str
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def size_or_zero(path):  # type: (str) -> int
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def check(path, sha256):  # type: (str, str) -> dict
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    try:
        cached = file_sha256(path) == sha256
    except OSError:
        cached = False
    stat = os.statvfs(directory)
    return {
        "cached": cached,
        "part_bytes": size_or_zero(path + ".part"),
        "free_bytes": stat.f_bavail * stat.f_frsize,
    }


def commit(path, sha256, size):  # type: (str, str, int) -> dict
    partial = path + ".part"
    part_bytes = size_or_zero(partial)
    try:
        ok = file_sha256(partial) == sha256
    except OSError:
        ok = False
    if ok:
        os.replace(partial, path)
    elif part_bytes >= size:
        os.remove(partial)
    return {"ok": ok, "part_bytes": part_bytes}


def remove(path):  # type: (str) -> dict
    try:
        os.remove(path)
    except OSError:
        return {"removed": False}
    return {"removed": True}


def receive(partial, offset, stream):  # type: (str, int, object) -> dict
    try:
        with open(partial, "r+b" if offset and os.path.exists(partial) else "wb") as handle:
            handle.seek(offset)
            handle.truncate()
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                handle.write(chunk)
    except OSError as exc:
        for _ in iter(lambda: stream.read(1 << 20), b""):
            pass
        return {"error": "%s: %s" % (type(exc).__name__, exc), "part_bytes": size_or_zero(partial)}
    return {"part_bytes": size_or_zero(partial)}


def answer(request):  # type: (dict) -> dict
    op = request.get("op")
    try:
        if op == "check":
            return check(request["path"], request["sha256"])
        if op == "commit":
            return commit(request["path"], request["sha256"], int(request["size"]))
        if op == "remove":
            return remove(request["path"])
    except (OSError, KeyError, ValueError) as exc:
        return {"error": "%s: %s" % (type(exc).__name__, exc)}
    return {"error": "unknown op %r" % (op,)}


def serve(workdir, lines, write):  # type: (str, object, object) -> None
    write(json.dumps({"workdir": os.path.expanduser(workdir), "python": "%d.%d" % sys.version_info[:2]}))
    for line in lines:
        if line.strip():
            write(json.dumps(answer(json.loads(line))))


def _write_line(text):  # type: (str) -> None
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.stdin, _write_line)
    elif len(sys.argv) == 4 and sys.argv[1] == "receive":
        _write_line(
            json.dumps(receive(sys.argv[2], int(sys.argv[3]), getattr(sys.stdin, "buffer", sys.stdin)))
        )
    else:
        sys.stderr.write("usage: board_stage.py serve WORKDIR | receive PATH.part OFFSET\n")
        sys.exit(2)
