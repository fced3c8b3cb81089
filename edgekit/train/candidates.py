"""Training candidates for `edgekit optimize`: QAT and prune-and-fine-tune artifact directories
made from a training config, for the search to judge like any compressed candidate.

The config's `data.train` trains; the search's held-out rows replace `data.eval`, so every
candidate is judged on the same rows. Each artifact's accuracy drop is measured against the
config's float model (`float.onnx` in the directory), which should be the model given to
`optimize`. A directory made earlier from the same config and seed is reused (resume); a
technique that fails is reported through `emit` and left out, the other still runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from edgekit.core.artifacts import MANIFEST_NAME
from edgekit.core.errors import EdgekitError
from edgekit.core.profiles import DeviceProfile
from edgekit.train.config import load_config

TECHNIQUES = (("qat", "train-qat"), ("prune", "train-prune"))


class TrainedArtifact(NamedTuple):
    """A training candidate: its name (`train-qat`) and its artifact directory (with
    manifest.json). The source of an `optimize` candidate, like a recipe chain."""

    name: str
    directory: Path

    def text(self) -> str:
        """The candidate's name, as a recipe chain's text is."""
        return self.name


def check_training_config(config_path: Path) -> None:
    """Up front, before any candidate is made: PyTorch is installed and the config parses for
    every technique `training_candidates` runs. Raises UsageError (the install line) without
    torch, ConfigError (file and key) for a bad config."""
    from edgekit.train.extra import require_torch

    require_torch("optimize --train-config")
    for technique, _ in TECHNIQUES:
        load_config(config_path, technique)


def _finished(out: Path, config_sha: str, seed: int) -> bool:
    manifest = out / MANIFEST_NAME
    if not manifest.is_file():
        return False
    made = json.loads(manifest.read_text()).get("training", {}).get("made_from", {})
    return made == {"config_sha256": config_sha, "seed": seed}


def training_candidates(
    config_path: Path,
    profile: DeviceProfile,
    calib: Path | None,
    heldout: Path,
    out_dir: Path,
    seed: int = 0,
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> list[TrainedArtifact]:
    """The QAT and prune-and-fine-tune artifacts, in that order (a failed one left out).
    `calib` is unused: QAT calibrates on training rows (the ranges it trained with)."""
    from edgekit.train.run import run_training

    emit = emit or (lambda event: None)
    config_sha = hashlib.sha256(config_path.read_bytes()).hexdigest()
    made: list[TrainedArtifact] = []
    for technique, name in TECHNIQUES:
        config = dataclasses.replace(load_config(config_path, technique), eval_data=heldout)
        out = out_dir / name
        if _finished(out, config_sha, seed):
            made.append(TrainedArtifact(name, out))
            continue
        emit({"phase": "training", "candidate": name, "message": f"training {technique} ({config_path})"})
        try:
            run_training(
                config,
                technique,
                out,
                seed=seed,
                force=True,
                profile=profile,
                training_extra={"made_from": {"config_sha256": config_sha, "seed": seed}},
                emit=lambda event, name=name: emit(
                    {**event, "training_phase": event.get("phase"), "phase": "training", "candidate": name}
                ),
            )
        except EdgekitError as exc:
            emit({"phase": "training", "candidate": name, "error": exc.message})
            continue
        made.append(TrainedArtifact(name, out))
    return made
