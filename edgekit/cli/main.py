"""Entry point: builds the typer app and translates errors to exit codes, once, here."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import traceback
import warnings
from typing import NoReturn

import typer

from edgekit import __version__
from edgekit.cli import bench as bench_commands
from edgekit.cli.common import UsageCommand
from edgekit.cli.compare import check_command, compare_command
from edgekit.cli.compress import compress_command
from edgekit.cli.fleet import fleet_app
from edgekit.cli.info import devices_app, history, profiles_app
from edgekit.cli.lab import lab_app
from edgekit.cli.optimize import optimize_command
from edgekit.cli.output import stderr
from edgekit.cli.report import report_command
from edgekit.cli.store import store_app
from edgekit.cli.train import train_command
from edgekit.core.errors import EXIT_INTERRUPTED, EXIT_USAGE, CancelledError, EdgekitError, EdgekitWarning

EXIT_INTERNAL = 70  # a bug in edgekit (EX_SOFTWARE); never used for input or device problems

app = typer.Typer(
    name="edgekit",
    help="Benchmark models on edge devices against per-device budgets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help: typer's rich panels print a type (`<bool>`) after every flag, which
    # takes no value; plain help also reads the same in a log as on a terminal.
    rich_markup_mode=None,
)
app.command(cls=UsageCommand)(bench_commands.bench)
app.command()(bench_commands.demo)
app.command()(history)
app.command("compress", cls=UsageCommand)(compress_command)
app.command("compare", cls=UsageCommand)(compare_command)
app.command("check", cls=UsageCommand)(check_command)
app.command("report")(report_command)
app.command("optimize", cls=UsageCommand)(optimize_command)
app.command("train", cls=UsageCommand)(train_command)
app.add_typer(devices_app, name="devices")
app.add_typer(profiles_app, name="profiles")
app.add_typer(fleet_app, name="fleet")
app.add_typer(lab_app, name="lab")
app.add_typer(store_app, name="store")


def _version(value: bool) -> None:
    if value:
        print(f"edgekit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """edgekit: does this model fit on that board? Exit codes: 0 ok, 1 over budget,
    2 usage or input error, 3 device or transport failure."""


def _usage_message(exc: Exception) -> str | None:
    """The one-line message of a command-line usage error (unknown command or option, bad value),
    else None. Matched by class name: typer >= 0.20 raises its vendored copy of click's classes."""
    if any(cls.__name__ == "ClickException" for cls in type(exc).__mro__):
        message = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
        return message.replace(": Value error, ", ": ")  # typer's wording for a Literal choice
    return None


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    """warnings.showwarning for the CLI: an EdgekitWarning is one `edgekit: warning: …` line on
    stderr; other libraries' warnings stay hidden unless EDGEKIT_DEBUG is set."""
    if issubclass(category, EdgekitWarning):
        stderr.print(f"edgekit: warning: {' '.join(str(message).split())}", markup=False)
    elif os.environ.get("EDGEKIT_DEBUG"):
        stderr.print(warnings.formatwarning(message, category, filename, lineno, line).rstrip(), markup=False)


_interrupted = False


def _on_sigint(signum: int, frame: object) -> None:
    """SIGINT (Ctrl-C): remembered (typer turns the KeyboardInterrupt into a silent exit 130),
    then raised as Python does, so that every `finally` on the way out cleans up."""
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _exit_interrupted() -> NoReturn:
    """Exit 130 after an interruption, whatever CPython's own Ctrl-C flag says.

    A KeyboardInterrupt that leaves an `exec()` of a string sets CPython's "unhandled Ctrl-C" flag
    even when it is caught later (Python/pythonrun.c, run_eval_code_obj), and an interpreter that
    runs a module (`python -m edgekit.cli.main`) checks that flag after a normal SystemExit and
    kills itself with SIGINT: a subprocess caller sees -2, not the documented 130. dataclasses and
    namedtuple build their methods with exec(), often inside a lazy import (torch's, in
    `compress`), so a Ctrl-C landing there did this. Every `finally` has run by now; this does the
    rest of a normal exit (wait for non-daemon threads; atexit handlers, which include tempfile's
    and weakref.finalize's clean-ups; flush) and leaves with os._exit(130)."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more reaches it
            stream.flush()
    os._exit(EXIT_INTERRUPTED)


def run() -> None:
    warnings.showwarning = _show_warning
    warnings.simplefilter("default", EdgekitWarning)  # each distinct warning once per place
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        # With standalone_mode=False click returns the code of a typer.Exit instead of exiting.
        code = app(standalone_mode=False)
        if _interrupted:
            raise KeyboardInterrupt
        sys.exit(code if isinstance(code, int) else 0)
    except CancelledError:
        stderr.print("edgekit: interrupted", markup=False)
        _exit_interrupted()
    except EdgekitError as exc:
        stderr.print(f"edgekit: error: {exc.message}", markup=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        if os.environ.get("EDGEKIT_DEBUG"):
            traceback.print_exc()
        stderr.print("edgekit: aborted", markup=False)
        _exit_interrupted()
    except KeyboardInterrupt:
        if os.environ.get("EDGEKIT_DEBUG"):
            traceback.print_exc()
        stderr.print("edgekit: interrupted", markup=False)
        _exit_interrupted()
    except Exception as exc:  # the boundary: a bug must not become a traceback for the user
        usage = _usage_message(exc)
        if usage is not None:
            hint = " (see --help)" if "--help" not in usage else ""
            stderr.print(f"edgekit: error: {usage}{hint}", markup=False)
            sys.exit(EXIT_USAGE)
        if os.environ.get("EDGEKIT_DEBUG"):  # the traceback, and still the documented exit code
            traceback.print_exc()
        stderr.print(
            f"edgekit: internal error: {exc.__class__.__name__}: {exc} "
            "(set EDGEKIT_DEBUG=1 for the traceback)",
            markup=False,
        )
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    run()
