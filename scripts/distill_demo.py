"""Distil the bundled digits CNN (teacher) into a small student, next to the same student on hard labels.

    python scripts/distill_demo.py [--seeds 0,1,2] [--epochs 60] [-o OUT_DIR]

Trains on the digits training split (the teacher's own; scikit-learn ships the data), evaluates
on the held-back test split, averages over seeds, and writes the best-seed distilled student as
an artifact directory (model.onnx + manifest.json) that `edgekit bench` takes. Needs the
`train` extra (CPU PyTorch, scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.compress.fidelity import session
from edgekit.core.artifacts import sha256_file
from edgekit.data import demo_model_path
from edgekit.data.digits import digits_student, load_digits_split
from edgekit.train.single_teacher import distill, export_onnx, require_torch


def accuracy(model: Path, x: np.ndarray, labels: np.ndarray) -> float:
    return float((session(model).run(None, {"input": x})[0].argmax(1) == labels).mean())


def train_hard_labels(model: Any, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> None:
    """The baseline: the same student, optimiser and schedule, cross-entropy on the labels only."""
    torch = require_torch()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(inputs), 64):
            index = order[start : start + 64]
            loss = torch.nn.functional.cross_entropy(model(inputs[index]), targets[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.7)
    parser.add_argument("-o", "--out", type=Path, default=None)
    args = parser.parse_args()
    torch = require_torch()
    torch.set_num_threads(1)
    data = load_digits_split(0)
    teacher = demo_model_path()
    results: dict[str, list[float]] = {"distilled": [], "hard labels": []}
    best: tuple[float, Any] | None = None
    with tempfile.TemporaryDirectory() as scratch:
        for seed in (int(s) for s in args.seeds.split(",")):
            distilled = digits_student()
            torch.manual_seed(seed)
            distill(
                teacher,
                distilled,
                data["x_train"],
                data["y_train"],
                temperature=args.temperature,
                alpha=args.alpha,
                epochs=args.epochs,
                learning_rate=1e-2,
                seed=seed,
            )
            torch.manual_seed(seed)
            baseline = digits_student()
            train_hard_labels(baseline, data["x_train"], data["y_train"], args.epochs, seed)
            for name, model in (("distilled", distilled), ("hard labels", baseline)):
                path = export_onnx(
                    model, data["x_train"], Path(scratch) / f"{name}-{seed}.onnx".replace(" ", "_")
                )
                results[name].append(accuracy(path, data["x_test"], data["y_test"]))
            if best is None or results["distilled"][-1] > best[0]:
                best = (results["distilled"][-1], distilled)
            distilled_accuracy, hard_accuracy = results["distilled"][-1], results["hard labels"][-1]
            print(f"seed {seed}: distilled {distilled_accuracy:.4f}, hard labels {hard_accuracy:.4f}")
    teacher_accuracy = accuracy(teacher, data["x_test"], data["y_test"])
    params = sum(p.numel() for p in digits_student().parameters())
    print(f"teacher (bundled CNN, 56,554 parameters): {teacher_accuracy:.4f}")
    for name, values in results.items():
        mean = statistics.mean(values)
        print(f"student ({params:,} parameters), {name}: mean {mean:.4f} over {len(values)} seeds")
    if args.out is not None and best is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        artifact = export_onnx(best[1], data["x_train"], args.out / "model.onnx")
        manifest = {
            "schema": 1,
            "artifact": {
                "file": "model.onnx",
                "sha256": sha256_file(artifact),
                "size_bytes": artifact.stat().st_size,
                "format": "onnx",
            },
            "source": {
                "path": str(teacher),
                "sha256": sha256_file(teacher),
                "size_bytes": teacher.stat().st_size,
            },
            "recipe": [
                {
                    "name": "distill",
                    "params": {
                        "temperature": args.temperature,
                        "alpha": args.alpha,
                        "epochs": args.epochs,
                        "student_parameters": params,
                    },
                }
            ],
            "fidelity": {"accuracy": {"teacher": teacher_accuracy, "student": best[0]}},
        }
        (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
