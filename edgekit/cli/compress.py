"""`edgekit compress`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edgekit.cli.common import JsonOption, OutputKindOption
from edgekit.cli.output import fmt, print_json, stderr, stdout
from edgekit.compress import RECIPES, CompressOptions, compress, parse_recipes
from edgekit.compress.fidelity import QualityFloor, parse_output_kinds
from edgekit.compress.images import ImagePreprocess
from edgekit.compress.specialize import parse_fix_inputs
from edgekit.core.errors import EXIT_BUDGET, EXIT_OK, UsageError
from edgekit.core.profiles import load_profile

_RECIPE_HELP = (
    "Recipe, e.g. int8-static, prune-channels:0.5, lowrank:energy=0.9; chain with + or repeat. "
    + ("Known: " + ", ".join(RECIPES))
)


def compress_command(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="The float ONNX model.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Artifact directory to write.")],
    recipe: Annotated[list[str], typer.Option(metavar="RECIPE", help=_RECIPE_HELP)],
    calib: Annotated[
        Path | None, typer.Option(help="Calibration .npz (one array per model input) or image folder.")
    ] = None,
    eval_data: Annotated[
        Path | None,
        typer.Option("--eval", help="Evaluation .npz (inputs + optional 'labels') or image folder."),
    ] = None,
    image_preprocess: Annotated[
        ImagePreprocess,
        typer.Option(help="Image folders: unit [0,1], imagenet mean/std, symmetric [-1,1] or raw."),
    ] = "unit",
    target: Annotated[str, typer.Option(help="Device profile whose int8 scheme is used.")] = "local",
    max_accuracy_drop: Annotated[
        float | None, typer.Option(help="Keep sensitive layers float until the drop <= this (points).")
    ] = None,
    calib_random: Annotated[
        bool, typer.Option(help="Accept random calibration data (ruins accuracy).")
    ] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing output directory.")] = False,
    per_layer: Annotated[
        bool, typer.Option(help="Report the SQNR each int8 node loses (find the layer that breaks).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for anything random.")] = 0,
    output_kind: OutputKindOption = None,
    fix_input: Annotated[
        list[str] | None,
        typer.Option(
            "--fix-input",
            metavar="NAME=VALUE",
            help="NAME=VALUE (repeatable): make an input a constant (a number or [list]) and fold "
            "the graph with onnxruntime's BASIC level before the recipe; If nodes whose condition "
            "depends only on fixed inputs keep one branch. The artifact no longer has the input.",
        ),
    ] = None,
    min_cosine: Annotated[
        float,
        typer.Option(
            help="Quality floor: the worst output's mean cosine to float; below it the artifact is "
            "marked degraded (optimize's --min-cosine, a stricter 0.99, is what it takes to be picked)."
        ),
    ] = QualityFloor.min_cosine,
    min_top1: Annotated[
        float, typer.Option(help="Quality floor: top-1 agreement (0-1) of class-score outputs.")
    ] = QualityFloor.min_top1,
    allow_degraded: Annotated[
        bool, typer.Option(help="Exit 0 for an artifact below the quality floor (still marked degraded).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compress MODEL with one or more recipes; write the artifact and manifest.json to OUT.

    An artifact below the quality floor (an output NaN/inf or constant where float is not, the
    worst output's cosine < --min-cosine, top-1 agreement < --min-top1 on class scores, or an
    accuracy drop over --max-accuracy-drop) is written, marked degraded, and exits 1."""
    if not -1.0 <= min_cosine <= 1.0:
        raise UsageError(f"--min-cosine must be within [-1, 1], got {min_cosine:g}")
    if not 0.0 <= min_top1 <= 1.0:
        raise UsageError(f"--min-top1 is a fraction within [0, 1], got {min_top1:g}")
    if max_accuracy_drop is not None and not 0.0 <= max_accuracy_drop <= 100.0:
        raise UsageError(f"--max-accuracy-drop is in points within [0, 100], got {max_accuracy_drop:g}")
    options = CompressOptions(
        steps=parse_recipes(recipe),
        profile=load_profile(target),
        calib=calib,
        eval=eval_data,
        max_accuracy_drop=max_accuracy_drop,
        calib_random=calib_random,
        force=force,
        seed=seed,
        image_preprocess=image_preprocess,
        per_layer=per_layer,
        output_kinds=parse_output_kinds(output_kind or []),
        min_cosine=min_cosine,
        min_top1=min_top1,
        allow_degraded=allow_degraded,
        fix_inputs=parse_fix_inputs(fix_input or []),
    )

    def on_event(event: dict[str, Any]) -> None:
        stderr.print(f"[dim]{event.get('phase')}: {event.get('message', '')}[/]")

    manifest = compress(model, out, options, on_event=on_event)
    if as_json:
        print_json(manifest)
    else:
        _print_manifest(manifest)
    guard = manifest.get("accuracy_guard")
    if guard is not None and not guard["met"]:
        stderr.print(
            f"edgekit: accuracy drop {fmt(guard.get('loss_points'), 2)} points exceeds "
            f"--max-accuracy-drop {guard['tolerance_points']:g}; kept the best artifact in {out}",
            markup=False,
        )
        raise typer.Exit(EXIT_BUDGET)
    if manifest.get("degraded"):
        reasons = manifest["degraded_reasons"]
        more = f" (+{len(reasons) - 1} more in manifest.json)" if len(reasons) > 1 else ""
        verdict = "accepted by --allow-degraded" if allow_degraded else "exit 1; --allow-degraded accepts it"
        stderr.print(f"edgekit: degraded artifact in {out}: {reasons[0]}{more}; {verdict}", markup=False)
        if not allow_degraded:
            raise typer.Exit(EXIT_BUDGET)
    raise typer.Exit(EXIT_OK)


def _print_manifest(manifest: dict[str, Any]) -> None:
    artifact, source = manifest["artifact"], manifest["source"]
    stdout.print(
        f"wrote {manifest['path']}/{artifact['file']}: {artifact['size_bytes']:,} bytes "
        f"({manifest['size_ratio']:.2f}x smaller than {source['size_bytes']:,}), target {manifest['target']}"
    )
    specialized = manifest.get("specialized")
    if specialized:
        fixed = ", ".join(f"{k}={v}" for k, v in specialized["fixed_inputs"].items())
        ifs = specialized["if_nodes"]
        stdout.print(
            f"  fixed inputs: {fixed} (folded with {specialized['folded_with']}; "
            f"If nodes {ifs['before']} -> {ifs['after']})",
            markup=False,
        )
    for step in manifest["recipe"]:
        report = step["report"]
        details = ", ".join(f"{k}={v}" for k, v in report.items() if not isinstance(v, (dict, list)))
        stdout.print(f"  {step['name']}: {details}")
        for item in report.get("stayed_float") or []:
            stdout.print(f"    stayed float: {item['node']} ({item['op']}): {item['why']}", markup=False)
    fid = manifest.get("fidelity")
    if not fid:
        stdout.print(f"  fidelity: {manifest.get('fidelity_null_reason')}")
        return
    worst = fid.get("output")
    table = Table(
        "fidelity",
        "value",
        title=f"fidelity on {fid['rows']} rows of {Path(fid['data']).name} (worst output: {worst})",
        title_justify="left",
    )
    if fid.get("accuracy"):
        acc = fid["accuracy"]
        table.add_row("accuracy before", f"{acc['before'] * 100:.2f}%")
        table.add_row("accuracy after", f"{acc['after'] * 100:.2f}%")
        table.add_row("accuracy drop", f"{acc['drop_points']:.2f} points")
    if fid.get("top1_agreement") is not None:
        table.add_row("top-1 agreement", f"{fid['top1_agreement'] * 100:.2f}%")
    table.add_row(
        "cosine (mean / min)", f"{fmt(fid.get('cosine_mean'), 5)} / {fmt(fid.get('cosine_min'), 5)}"
    )
    table.add_row("max abs error", fmt(fid.get("max_abs_error"), 5))
    table.add_row("SQNR dB", fmt(fid.get("sqnr_db"), 2))
    stdout.print(table)
    outputs = fid.get("outputs") or {}
    if len(outputs) > 1:
        for name, item in outputs.items():
            top1 = item.get("top1_agreement")
            stdout.print(
                f"  output {name} ({item['kind']}): cosine {fmt(item.get('cosine_mean'), 5)}, "
                f"SQNR {fmt(item.get('sqnr_db'), 2)} dB, max error {fmt(item.get('max_abs_error'), 5)}"
                + (f", top-1 {top1 * 100:.1f}%" if top1 is not None else ""),
                markup=False,
            )
    for name, why in (fid.get("skipped") or {}).items():
        stdout.print(f"  output {name}: skipped, {why}", markup=False)
    layers = fid.get("per_layer_sqnr_drop_db") or []
    if layers:
        worst = ", ".join(f"{item['node']} ({item['sqnr_drop_db']:.1f} dB)" for item in layers[:5])
        stdout.print(f"  most damaged layers (SQNR lost): {worst}")
    guard = manifest.get("accuracy_guard")
    if guard and guard.get("kept_float"):
        names = ", ".join(item["node"] for item in guard["kept_float"])
        stdout.print(f"  kept float by the accuracy guard ({guard.get('method')}): {names}")
    repair = (manifest.get("quality_floor") or {}).get("repair")
    if repair and repair.get("kept_float"):
        names = ", ".join(item["node"] for item in repair["kept_float"])
        stdout.print(f"  kept float32 to hold the quality floor ({repair['method']}): {names}", markup=False)
