"""`edgekit train qat|prune|distill --config train.toml -o OUT`: training-aware compression.

Torch is imported only when the command runs: every other command works without the extra."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from edgekit.cli.common import JsonOption
from edgekit.cli.output import print_json, stderr, stdout
from edgekit.core.errors import EXIT_OK, UsageError

TECHNIQUES = ("qat", "prune", "distill")


def _progress_line(event: dict[str, Any]) -> str | None:
    """One readable stderr line for a training event (epoch, resume, prune, result, fidelity),
    None for events that print nothing."""
    kind = event.get("event")
    if kind == "epoch":
        parts = [f"{event['phase']} epoch {event['epoch']}/{event['epochs']}", f"loss {event['loss']:.4f}"]
        if event.get("train_accuracy") is not None:
            parts.append(f"train acc {event['train_accuracy']:.4f}")
        if event.get("eval_accuracy") is not None:
            parts.append(f"eval acc {event['eval_accuracy']:.4f}")
        parts.append(f"{event['seconds']:.1f} s")
        return "  ".join(parts)
    if kind == "resume":
        return f"{event['phase']}: resumed from the checkpoint of epoch {event['epoch']}/{event['epochs']}"
    if kind == "prune":
        return (
            f"{event['phase']}: pruned to ratio {event['ratio']:.2f}, accuracy {event['accuracy_pruned']:.4f}"
        )
    if kind == "result":
        return f"{event['phase']}: " + ", ".join(f"{k} {v:.4f}" for k, v in event["accuracy"].items())
    if kind == "fidelity":
        return f"fidelity: {event['message']}"
    return None


def _on_event(as_json: bool) -> Callable[[dict[str, Any]], None]:
    """Where training events go: one JSON object a line on stderr with --json, else the readable
    progress lines (`_progress_line`) on stderr."""

    def on_event(event: dict[str, Any]) -> None:
        if as_json:
            sys.stderr.write(json.dumps(event, default=str) + "\n")
            sys.stderr.flush()
            return
        line = _progress_line(event)
        if line is not None:
            stderr.print(line, markup=False)

    return on_event


def train_command(
    technique: Annotated[str, typer.Argument(metavar="TECHNIQUE", help="qat, prune or distill.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="Training config (TOML).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Artifact directory to write.")],
    seed: Annotated[int, typer.Option(help="Seed of initialisation, shuffling and augmentation.")] = 0,
    resume: Annotated[
        bool, typer.Option("--resume/--fresh", help="Continue from OUT.checkpoints, or start over.")
    ] = True,
    target: Annotated[str, typer.Option(help="Device profile whose int8 scheme QAT exports.")] = "local",
    force: Annotated[bool, typer.Option(help="Replace an existing output directory.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Train with quantization (qat), pruning (prune) or teachers (distill); write OUT like compress."""
    if technique not in TECHNIQUES:
        raise UsageError(f"train: unknown technique {technique!r}; expected one of {', '.join(TECHNIQUES)}")
    from edgekit.core.profiles import load_profile
    from edgekit.train.config import load_config
    from edgekit.train.extra import require_torch

    settings = load_config(config, technique)
    profile = load_profile(target)
    require_torch(f"edgekit train {technique}")
    from edgekit.train.run import run_training

    emit = _on_event(as_json)
    manifest = run_training(
        settings, technique, out, seed=seed, resume=resume, force=force, profile=profile, emit=emit
    )
    if as_json:
        print_json(manifest)
    else:
        _summary(manifest)
    raise typer.Exit(EXIT_OK)


def _summary(manifest: dict[str, Any]) -> None:
    """The artifact written, its size ratio and accuracy drop, and the technique's own accuracies
    (QAT vs PTQ, each pruning step, teachers vs student) on stdout."""
    artifact = manifest["artifact"]
    stdout.print(
        f"wrote {manifest['path']}/{artifact['file']}: {artifact['size_bytes']:,} bytes "
        f"({manifest['size_ratio']:.2f}x smaller than its float reference)"
    )
    accuracy = (manifest.get("fidelity") or {}).get("accuracy")
    if accuracy:
        stdout.print(
            f"  accuracy: float {accuracy['before'] * 100:.2f}% -> {accuracy['after'] * 100:.2f}% "
            f"({accuracy['drop_points']:.2f} points drop)"
        )
    training = manifest.get("training") or {}
    if training.get("technique") == "qat":
        acc = training["accuracy"]
        stdout.print(
            f"  qat ({training['bits']} bits): float {acc['float']:.4f}, post-training {acc['ptq']:.4f}, "
            f"qat {acc['qat']:.4f}"
        )
    for step in training.get("history", []) if training.get("technique") == "prune_finetune" else []:
        finetuned = step["accuracy_finetuned"]
        stdout.print(
            f"  step {step['step']}: ratio {step['ratio']:.2f}, {step['onnx_size_bytes']:,} bytes, "
            f"accuracy pruned {step['accuracy_pruned']:.4f}"
            + (f", fine-tuned {finetuned:.4f}" if finetuned is not None else "")
        )
    if training.get("technique") == "distill":
        acc = training["accuracy"]
        teachers = ", ".join(f"{a:.4f}" for a in acc["teachers"])
        stdout.print(f"  teachers {teachers}; ensemble {acc['ensemble']:.4f}; student {acc['student']:.4f}")
