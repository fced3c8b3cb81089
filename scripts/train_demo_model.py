"""Train the bundled demo model: a small CNN on scikit-learn's digits, exported to ONNX.

The data ships inside scikit-learn (1797 real 8x8 handwritten digits, UCI ML digits test
set); nothing is downloaded. Needs the `train` extra (CPU PyTorch):

    pip install -e '.[train]'        # or: pip install torch==2.13.0 scikit-learn
    python scripts/train_demo_model.py [--out-dir edgekit/data] [--epochs 60] [--seed 0]

Writes demo_digits.onnx, demo_digits_test.npz (held-back labelled split, never used for
training or model selection), demo_digits_calib.npz (256 training rows, for int8
calibration) and demo_digits.json (how it was made and the accuracy onnxruntime measures).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.data.digits import TEST_FRACTION, load_digits_split

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
CALIB_ROWS = 256


def build_model() -> Any:
    from torch import nn

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, 32),
        *block(32, 64),
        nn.MaxPool2d(2),
        *block(64, 64),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def shift_augment(batch: Any, generator: Any) -> Any:
    """Random shifts of up to one pixel (zero fill): digits are not always centred."""
    import torch

    padded = torch.nn.functional.pad(batch, (1, 1, 1, 1))
    dx, dy = torch.randint(0, 3, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + 8, dx : dx + 8]


def train(data: dict[str, np.ndarray], epochs: int, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # determinism on CPU
    generator = torch.Generator().manual_seed(seed)
    model = build_model()
    x = torch.from_numpy(data["x_train"])
    y = torch.from_numpy(data["y_train"])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total, correct, loss_sum = 0, 0, 0.0
        for start in range(0, len(x), 64):
            index = order[start : start + 64]
            inputs, targets = shift_augment(x[index], generator), y[index]
            optimizer.zero_grad()
            logits = model(inputs)
            loss = loss_fn(logits, targets)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss) * len(index)
            correct += int((logits.argmax(1) == targets).sum())
            total += len(index)
        scheduler.step()
        print(f"epoch {epoch + 1:3d}/{epochs}  loss {loss_sum / total:.4f}  train acc {correct / total:.4f}")
    return model.eval()


def export(model: Any, path: Path) -> None:
    import torch

    example = torch.zeros(1, 1, 8, 8)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=17,
        dynamo=False,  # the dynamo exporter may emit another opset and trips on batch-1 examples
    )


def onnx_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    return float((logits.argmax(1) == y).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parents[1] / "edgekit" / "data")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import sklearn
        import torch
    except ImportError as exc:
        print(f"train_demo_model: {exc.name} is missing: pip install -e '.[train]'", file=sys.stderr)
        return 2

    started = time.time()
    data = load_digits_split(args.seed)
    model = train(data, args.epochs, args.seed)
    out: Path = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "demo_digits.onnx"
    export(model, model_path)
    np.savez_compressed(out / "demo_digits_test.npz", input=data["x_test"], labels=data["y_test"])
    calib = data["x_train"][np.random.default_rng(args.seed).permutation(len(data["x_train"]))[:CALIB_ROWS]]
    np.savez_compressed(out / "demo_digits_calib.npz", input=calib)
    accuracy = onnx_accuracy(model_path, data["x_test"], data["y_test"])
    metadata = {
        "model": model_path.name,
        "dataset": "sklearn.datasets.load_digits (UCI ML hand-written digits, 8x8, 10 classes)",
        "sklearn_version": sklearn.__version__,
        "torch_version": torch.__version__,
        "split": {
            "test_fraction": TEST_FRACTION,
            "stratified": True,
            "seed": args.seed,
            "train_rows": len(data["x_train"]),
            "test_rows": len(data["x_test"]),
            "calib_rows": CALIB_ROWS,
            "calib_from": "train",
        },
        "preprocessing": "pixels / 16 -> float32 in [0, 1], shape [batch, 1, 8, 8]",
        "input": {"name": INPUT_NAME, "shape": ["batch", 1, 8, 8], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", 10], "dtype": "float32"},
        "architecture": "Conv3x3(1->32)+BN+ReLU, Conv3x3(32->64)+BN+ReLU, MaxPool2, "
        "Conv3x3(64->64)+BN+ReLU, GlobalAvgPool, Linear(64->10)",
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "epochs": args.epochs,
        "test_accuracy": round(accuracy, 4),
        "accuracy_measured_with": "onnxruntime on the exported ONNX, held-back test split",
        "command": "python scripts/train_demo_model.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "train_seconds": round(time.time() - started, 1),
    }
    (out / "demo_digits.json").write_text(json.dumps(metadata, indent=2) + "\n")
    sizes = {p.name: p.stat().st_size for p in sorted(out.glob("demo_digits*"))}
    print(f"test accuracy (onnxruntime): {accuracy:.4f}; files: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
