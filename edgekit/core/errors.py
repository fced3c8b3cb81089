"""Typed errors. Every error carries data; the CLI maps the class to an exit code once."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_BUDGET = 1
EXIT_USAGE = 2
EXIT_DEVICE = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a process stopped by Ctrl-C


class EdgekitError(Exception):
    """Base class. `exit_code` follows docs/results.md ("Exit codes"): 2 usage/input, 3 device/transport."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return self.message


class EdgekitWarning(UserWarning):
    """Something the user should know that does not stop the run (threads above the board's cores,
    a result spooled because the store did not answer). Raised with `warnings.warn(message,
    EdgekitWarning)` in library code; the CLI prints each as one `edgekit: warning: …` line on
    stderr, pytest shows them in its warnings summary."""


def warn(message: str) -> None:
    """Issue an `EdgekitWarning` with a one-line `message` (no trailing period needed)."""
    import warnings

    warnings.warn(message, EdgekitWarning, stacklevel=2)


class UsageError(EdgekitError):
    """A command-line option or argument is wrong."""


class ConfigError(EdgekitError):
    """A TOML file (profile, inventory, plan) is malformed or has a wrong key, type or unit."""


class ModelError(EdgekitError):
    """A model file is missing, not ONNX, truncated or otherwise unusable."""


class InputSpecError(EdgekitError):
    """Model inputs cannot be built from the given shapes / data file."""


class UnknownDeviceError(EdgekitError):
    """A device name that no inventory knows."""


class UnknownProfileError(EdgekitError):
    """A profile name with no TOML file behind it."""


class StoreError(EdgekitError):
    """The results store cannot be opened, migrated or queried."""


class DeviceError(EdgekitError):
    """The device, its transport or its agent failed."""

    exit_code = EXIT_DEVICE


class CancelledError(EdgekitError):
    """The run was stopped from outside (Ctrl-C / SIGINT in the main thread, which a worker thread
    sees as its cancel event): exit 130, printed as `edgekit: interrupted`."""

    exit_code = EXIT_INTERRUPTED


class MissingPrerequisiteError(EdgekitError):
    """The host lacks something a command needs (root, a kernel feature, a package): `missing` names it."""

    def __init__(self, message: str, *, missing: list[str], **data: Any) -> None:
        super().__init__(message, missing=missing, **data)
        self.missing = missing


class LabError(DeviceError):
    """An emulated board (edgekit lab) could not be built, started or stopped."""


class AgentError(DeviceError):
    """The agent answered a request with an error reply."""

    def __init__(self, message: str, *, error_type: str, **data: Any) -> None:
        super().__init__(message, error_type=error_type, **data)
        self.error_type = error_type


# Agent error types that mean the *input* was wrong, not the device.
AGENT_INPUT_ERROR_TYPES = frozenset({"ArtifactNotFound", "ModelLoadError", "InputError"})
# Agent error types that mean the board lacks an accelerator asked for explicitly, or the
# accelerator refused a model the CPU takes (ProviderFailed; docs/protocol.md): a DeviceError
# (exit 3), but the board itself works and can run other benchmarks.
ACCELERATOR_MISSING_ERROR_TYPES = frozenset({"ProviderMissing", "ProviderFailed", "DelegateMissing"})
# Agent error types that fail ONE request while the agent stays up and answers the next: the
# missing accelerators, and a BadRequest (a setting the host's checks let through). A fleet run
# fails that cell only; the board's other cells run.
CELL_ERROR_TYPES = ACCELERATOR_MISSING_ERROR_TYPES | {"BadRequest"}


class TrainingDivergedError(EdgekitError):
    """The training loss stopped being a finite number (the data carries the epoch and the last
    good checkpoint, which is kept)."""
