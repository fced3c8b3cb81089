"""`optimize`: find the smallest, fastest artifact that keeps the accuracy, by measuring on the board.

Per device: benchmark the float model (the reference), then each candidate recipe: compress on
the host (once per board profile), judge its accuracy on held-out rows, benchmark the survivors
on the device, reject any that is slower there than float (the regression gate's test: a
significant slowdown beyond half the 5% threshold), chain the best survivors, keep the Pareto
front over latency, size, energy and accuracy, and pick the best for the objective among the
candidates that meet the board's budgets. The state is saved after every candidate (resume),
and the best so far is written after every candidate (a time budget or a kill loses nothing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekit.compress import CompressOptions, Recipe, compress
from edgekit.compress.fidelity import quality_loss, worst_cosine
from edgekit.core.accelerators import AcceleratorRequest, check_provider_names
from edgekit.core.artifact_writer import artifact_manifest, make_dir, write_manifest
from edgekit.core.artifacts import MANIFEST_NAME, artifact_files, artifact_sha256, sha256_file
from edgekit.core.errors import DeviceError, EdgekitError, UsageError, warn
from edgekit.core.inputs import parse_shape_options, shapes_from_samples
from edgekit.core.onnx_model import graph_inputs, load_onnx
from edgekit.core.profiles import DeviceProfile
from edgekit.judge.regression import judge_samples
from edgekit.measure.ab import AbOptions, ab_compare
from edgekit.measure.bench import BenchOptions, run_bench
from edgekit.measure.facts import check_providers_on
from edgekit.optimize.candidates import (
    Candidate,
    FloatModel,
    ModelTraits,
    RuntimeSettings,
    first_phase,
    on_providers,
    second_phase,
    slug,
    takers,
    untaken,
)
from edgekit.optimize.data import SearchData, prepare_data
from edgekit.optimize.pareto import OBJECTIVES, Measured, pareto_front, pick
from edgekit.optimize.state import (
    ACCEPTED,
    BASELINE,
    FAILED,
    REJECTED,
    DeviceSearch,
    Outcome,
    load_state,
)
from edgekit.store.base import ResultsStore
from edgekit.train.candidates import TrainedArtifact, check_training_config, training_candidates
from edgekit.transport.board import Board

FLOAT = "float"
TOP1_KINDS = ("scores", "sequence", "labels")  # outputs judged by top-1 agreement, not by cosine
EventCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class OptimizeOptions:
    model: Path
    eval: Path
    out_dir: Path
    calib: Path | None = None
    max_accuracy_drop: float = 1.0
    objective: str = "latency"
    time_budget_s: float | None = None
    seed: int = 0
    recipes: tuple[Recipe, ...] = ()  # each a candidate; empty: generated from the model and the board
    bench: BenchOptions = field(default_factory=BenchOptions)
    fresh: bool = False
    confirm_rounds: int = 12  # round pairs (at most) of the pick-vs-float interleaved A/B run; 0: off
    train_config: Path | None = None  # also try QAT and prune-and-fine-tune (edgekit train config)
    min_cosine: float = 0.99  # outputs that are not class scores: the worst mean cosine to float
    output_kinds: dict[str, str] = field(default_factory=dict)  # --output-kind NAME=KIND overrides
    # --provider: onnxruntime execution providers (edgekit names), each candidate paired with those
    # that take it (edgekit.optimize.candidates.provider_takes); the first one runs the float
    # baseline. Empty: the bench's default (the profile's [accelerators], else the CPU).
    providers: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise UsageError(f"--objective {self.objective}: one of {', '.join(OBJECTIVES)}")
        if self.max_accuracy_drop < 0:
            raise UsageError(f"--max-accuracy-drop must be >= 0, got {self.max_accuracy_drop:g}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise UsageError("--time-budget must be positive")
        if not -1.0 <= self.min_cosine <= 1.0:
            raise UsageError(f"--min-cosine must be within [-1, 1], got {self.min_cosine:g}")
        if self.confirm_rounds < 0:
            raise UsageError("--confirm must be >= 0")
        for path, option in (
            (self.model, "MODEL"),
            (self.eval, "--eval"),
            (self.calib, "--calib"),
            (self.train_config, "--train-config"),
        ):
            if path is not None and not path.exists():
                raise UsageError(f"{option} {path}: no such file or directory")
        if self.train_config is not None:
            check_training_config(self.train_config)
        check_provider_names(self.providers)
        if self.providers and self.bench.accelerators != AcceleratorRequest():
            raise UsageError("--provider: the candidates' providers replace the bench's accelerators")
        self.bench.validate()

    def check_pairing(self) -> None:
        """Each --recipe no --provider takes (edgekit.optimize.candidates.provider_takes) is one
        warning line saying why it is not tried. Raises UsageError (exit 2) when that leaves no
        candidate but the float model (and no --train-config adds any)."""
        dropped = untaken(self.recipes, self.providers)
        asked = ", ".join(self.providers)
        if dropped and len(dropped) == len(self.recipes) and self.train_config is None:
            names = ", ".join(r.text() for r in dropped)
            why = "; ".join(dict.fromkeys(takers(r) for r in dropped))
            raise UsageError(
                f"--recipe {names}: no --provider of {asked} takes any of them ({why}); "
                "only the float model would be left: add a provider that takes them or another recipe"
            )
        for recipe in dropped:
            warn(f"--recipe {recipe.text()}: not tried, no --provider of {asked} takes it ({takers(recipe)})")


@dataclass
class DeviceReport:
    device: str
    profile: str
    outcomes: list[Outcome]
    front: list[str]
    chosen: str | None
    chosen_reason: str
    best_dir: str | None
    error: str | None = None
    confirmation: dict[str, Any] | None = None


def _file_key(path: Path | None) -> str | None:
    if path is None:
        return None
    if path.is_dir():
        return "dir:" + str(path.resolve())
    return sha256_file(path)


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of `path` that does not exist yet (None: `path` exists)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def search_key(options: OptimizeOptions) -> dict[str, Any]:
    """What must match for a saved search to be resumed."""
    bench = options.bench
    return {
        # The artifact hash rule: the model and its external data files, as compress records the source.
        "model_sha256": artifact_sha256(artifact_files(options.model)),
        "eval": _file_key(options.eval),
        "calib": _file_key(options.calib),
        "max_accuracy_drop": options.max_accuracy_drop,
        "seed": options.seed,
        "recipes": [recipe.text() for recipe in options.recipes],
        "train_config": _file_key(options.train_config),
        "min_cosine": options.min_cosine,
        "output_kinds": dict(sorted(options.output_kinds.items())),
        "bench": {"runs": bench.runs, "min_seconds": bench.min_seconds, "threads": bench.threads},
        # only when asked for: searches without --provider keep their key (and resume)
        **({"providers": list(options.providers)} if options.providers else {}),
    }


def model_traits(model: Path, profile: DeviceProfile) -> ModelTraits:
    return ModelTraits(
        op_types=frozenset(node.op_type for node in load_onnx(model).graph.node),
        tflite_runtime=profile.facts.runtime == "tflite",
        int8_scheme=profile.facts.int8_scheme,
    )


def with_data_shapes(options: OptimizeOptions) -> OptimizeOptions:
    """Without --shape, the fixed shapes of the inputs the model leaves open come from the --eval
    data (edgekit.core.inputs.shapes_from_samples), so that every candidate is benchmarked on
    the shapes it is judged on. --shape names are checked against the model here, on the host."""
    if options.model.suffix.lower() != ".onnx" or not options.model.is_file():
        return options
    declared = graph_inputs(load_onnx(options.model))
    if options.bench.shapes:
        parse_shape_options(options.bench.shapes, [i.name for i in declared])  # UsageError early
        return options
    shapes = shapes_from_samples(options.eval, declared)
    if not shapes:
        return options
    return dataclasses.replace(options, bench=dataclasses.replace(options.bench, shapes=shapes))


class Search:
    """One search over one or more devices, sharing compressed artifacts between devices of
    the same profile."""

    def __init__(
        self,
        options: OptimizeOptions,
        store: ResultsStore | None = None,
        on_event: EventCallback | None = None,
    ) -> None:
        options.validate()
        self.options = with_data_shapes(options)
        options = self.options
        self.store = store
        self.emit = on_event or (lambda event: None)
        self.out_dir = options.out_dir
        created = _first_missing(self.out_dir)
        make_dir(self.out_dir)  # exit 2 for a file or a place nothing can be created
        try:
            self.state, self.resumed = load_state(self.out_dir, search_key(options), options.fresh)
            self.data: SearchData = prepare_data(
                options.eval, options.calib, self.out_dir / "data", options.seed
            )
        except BaseException:  # refused before any work: leave no -o directory behind
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise
        if not self.data.labelled:
            self.emit(
                {
                    "phase": "note",
                    "message": "no labels in --eval: class scores judged by top-1 disagreement, other "
                    f"outputs by cosine >= {options.min_cosine:g}",
                }
            )
        self.deadline = time.monotonic() + options.time_budget_s if options.time_budget_s else None
        self.search_id = hashlib.sha256(json.dumps(self.state.key, sort_keys=True).encode()).hexdigest()[:12]
        self.out_of_time = False
        self.known: dict[str, Candidate] = {}  # every candidate of this run by name (resumed ones too)

    # -- one device -------------------------------------------------------------------------

    def run_device(self, board: Board) -> DeviceReport:
        profile = board.profile
        search = self.state.device(board.name, profile.name)
        providers = self.options.providers
        try:
            if providers and not search.outcomes:
                # a provider the board lacks: ProviderMissing (exit 3) before the float model runs
                check_providers_on(board, providers)
            baseline = self._baseline(board, search)
            # The float model on every other provider first: a provider the board lacks that its
            # agent did not list fails the device here (exit 3) before any candidate is compressed.
            others = [Candidate(FloatModel(), RuntimeSettings(provider=p)) for p in providers[1:]]
            self._try_all(board, search, others, baseline)
            first = on_providers(self._first_phase(profile), providers)
            self._try_all(board, search, first, baseline)
            if not self.options.recipes:
                chains = second_phase(self._survivors(search, first), search.outcomes)
                self._try_all(board, search, chains, baseline)
            if self.options.train_config is not None and self._time_left():
                trained = on_providers(self._training_candidates(profile), providers)
                self._try_all(board, search, trained, baseline)
            if not self.out_of_time:
                self._confirm(board, search)
        except DeviceError as exc:
            return self._report(search, profile, error=exc.message)
        return self._report(search, profile)

    def _first_phase(self, profile: DeviceProfile) -> list[Candidate]:
        """The user's recipes, each a candidate, else those generated for the model and board."""
        if self.options.recipes:
            return [Candidate(recipe) for recipe in self.options.recipes]
        return first_phase(model_traits(self.options.model, profile))

    def _try_all(
        self,
        board: Board,
        search: DeviceSearch,
        candidates: Sequence[Candidate],
        baseline: Outcome,
    ) -> None:
        for candidate in candidates:
            self._candidate(board, search, candidate, baseline)

    def _time_left(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            if not self.out_of_time:
                self.emit({"phase": "time-budget", "message": "time budget reached: stopping the search"})
            self.out_of_time = True
        return not self.out_of_time

    def _baseline(self, board: Board, search: DeviceSearch) -> Outcome:
        if search.done(FLOAT):
            return search.outcomes[FLOAT]
        self.emit({"phase": "candidate", "device": board.name, "candidate": FLOAT})
        started = time.monotonic()
        runtime = self._baseline_runtime()
        outcome = Outcome(
            FLOAT,
            BASELINE,
            "the float model: the reference",
            artifact=str(self.options.model),
            provider=runtime.provider,
        )
        self._measure(board, self.options.model, outcome, runtime=runtime)
        outcome.accuracy_drop_points = 0.0
        outcome.speedup = 1.0
        outcome.seconds = round(time.monotonic() - started, 2)
        search.outcomes[FLOAT] = outcome
        self.state.save(self.out_dir)
        return outcome

    def _baseline_runtime(self) -> RuntimeSettings:
        """The float reference runs on the first provider asked for (the bench's default without)."""
        return RuntimeSettings(provider=self.options.providers[0] if self.options.providers else None)

    def _training_candidates(self, profile: DeviceProfile) -> list[Candidate]:
        """QAT and prune-and-fine-tune artifacts from the training config, trained once per
        profile (reused by later devices and resumed searches), judged like every candidate."""
        assert self.options.train_config is not None
        made = training_candidates(
            self.options.train_config,
            profile,
            self.data.calib,
            self.data.heldout,
            self.out_dir / "candidates" / profile.name,
            self.options.seed,
            self.emit,
        )
        return [Candidate(artifact) for artifact in made]

    def _candidate(
        self,
        board: Board,
        search: DeviceSearch,
        candidate: Candidate,
        baseline: Outcome,
    ) -> None:
        """Judge one candidate (unless already judged, or out of time): make its artifact, judge
        its accuracy, measure the survivors on the device and judge their speed against float."""
        name = candidate.name
        self.known[name] = candidate
        if search.done(name) or not self._time_left():
            return
        device, profile = board.device, board.profile
        self.emit({"phase": "candidate", "device": device.name, "candidate": name})
        started = time.monotonic()
        outcome = Outcome(name, ACCEPTED, provider=candidate.runtime.provider)
        try:
            if isinstance(candidate.source, FloatModel):  # the reference's file on another provider
                model, outcome.accuracy_drop_points = self.options.model, 0.0
            else:
                model, manifest = self._artifact(profile, candidate)
                self._judge_accuracy(outcome, manifest)
            outcome.artifact = str(model)
            if outcome.status == ACCEPTED:
                self._measure(board, model, outcome, runtime=candidate.runtime)
                self._judge_speed(outcome, baseline, device.name)
                self._judge_placement(outcome)
        except DeviceError:
            raise  # the device is gone (or lacks a provider asked for): reported, other devices go on
        except EdgekitError as exc:
            outcome.status, outcome.reason = FAILED, exc.message
        except Exception as exc:  # a library failure not typed on its way up: this candidate only
            text = " ".join(str(exc).split())[:300]
            outcome.status, outcome.reason = FAILED, f"internal: {type(exc).__name__}: {text}"
        outcome.seconds = round(time.monotonic() - started, 2)
        search.outcomes[name] = outcome
        self.state.save(self.out_dir)
        self._write_best(search, profile)
        self.emit(
            {"phase": "outcome", "device": device.name, "candidate": name, "outcome": outcome.to_dict()}
        )

    def _judge_accuracy(self, outcome: Outcome, manifest: dict[str, Any]) -> None:
        """Fill the accuracy and size from the artifact's manifest and judge it, in this order:
        rejected beyond --max-accuracy-drop (accuracy drop with labels, else top-1 disagreement,
        on class-score outputs); rejected when compress called it degraded (below the quality
        floor); rejected when an output that is not class scores (boxes, maps, embeddings) has a
        mean cosine to float below --min-cosine. A model with no class-score output is judged by
        that cosine alone; only a candidate with no comparable output at all is unmeasurable."""
        fidelity = manifest.get("fidelity") or {}
        accuracy = fidelity.get("accuracy") or {}
        outcome.accuracy = accuracy.get("after")
        outcome.top1_agreement = fidelity.get("top1_agreement")
        outcome.accuracy_drop_points = quality_loss(fidelity)
        outcome.size_bytes = int(manifest["artifact"]["size_bytes"])
        drop = outcome.accuracy_drop_points
        other = [
            (name, item["cosine_mean"])
            for name, item in (fidelity.get("outputs") or {}).items()
            if item.get("kind") not in TOP1_KINDS and item.get("cosine_mean") is not None
        ]
        low = [(name, cosine) for name, cosine in other if cosine < self.options.min_cosine]
        if drop is not None and drop > self.options.max_accuracy_drop:
            outcome.status = REJECTED
            outcome.reason = f"accuracy drop {drop:.2f} > {self.options.max_accuracy_drop:g} points"
        elif manifest.get("degraded"):
            outcome.status = REJECTED
            outcome.reason = "degraded: " + "; ".join(manifest.get("degraded_reasons") or [])
        elif low:
            name, cosine = min(low, key=lambda item: item[1])
            outcome.status = REJECTED
            outcome.reason = f"output {name}: cosine {cosine:.4f} < {self.options.min_cosine:g}"
        elif drop is None and worst_cosine(fidelity) is None:
            outcome.status = REJECTED
            outcome.reason = "fidelity not measurable on --eval (no tensor output could be compared)"

    def _artifact(self, profile: DeviceProfile, candidate: Candidate) -> tuple[Path, dict[str, Any]]:
        """The candidate's artifact directory and manifest: a trained one as made, a recipe
        compressed for this profile's scheme, made once, reused by every device with the profile
        and by a resumed search (a directory is only there whole: compress publishes it
        atomically)."""
        if isinstance(candidate.source, TrainedArtifact):
            directory = candidate.source.directory
            return directory, json.loads((directory / MANIFEST_NAME).read_text())
        assert isinstance(candidate.source, Recipe)  # the float model has no artifact of its own
        out = self.out_dir / "candidates" / profile.name / candidate.artifact_slug()
        manifest_path = out / MANIFEST_NAME
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("source", {}).get("sha256") == self.state.key["model_sha256"]:
                return out, manifest
        options = CompressOptions(
            steps=list(candidate.source.steps),
            profile=profile,
            calib=self.data.calib,
            eval=self.data.heldout,
            # The guard (sensitive layers kept float) needs labels; without them candidates are
            # judged on top-1 agreement with the float model only.
            max_accuracy_drop=self.options.max_accuracy_drop if self.data.labelled else None,
            force=True,
            seed=self.options.seed,
            output_kinds=dict(self.options.output_kinds),
        )
        manifest = compress(
            self.options.model, out, options, on_event=lambda e: self.emit({**e, "phase": "compress"})
        )
        return out, manifest

    def _measure(
        self,
        board: Board,
        model: Path,
        outcome: Outcome,
        tag: str = "search",
        runtime: RuntimeSettings | None = None,
    ) -> None:
        bench = self._bench_options(runtime or RuntimeSettings())
        result = run_bench(
            model,
            board,
            bench,
            on_event=lambda e: self.emit({**e, "candidate": outcome.name}),
        )
        result.optimize = {"search_id": self.search_id, "candidate": outcome.name, "stage": tag}
        if self.store is not None:
            self.store.add_run(result)
        outcome.latency_p50_ms = result.latency_ms.p50
        outcome.block_medians = result.latency_ms.block_medians
        outcome.size_bytes = result.artifact.size_bytes
        outcome.energy_mj = result.energy.mj_per_inference if result.energy is not None else None
        outcome.budget_verdict = result.budget.verdict
        outcome.run_id = result.run_id
        placement = result.runtime.placement if result.runtime is not None else None
        fraction = placement.accelerated_fraction if placement is not None else None
        outcome.accelerated_fraction = float(fraction) if fraction is not None else None

    def _bench_options(self, runtime: RuntimeSettings) -> BenchOptions:
        """The search's bench options with the candidate's runtime settings over them (its
        provider asked for explicitly: a board without it is ProviderMissing, exit 3)."""
        bench = self.options.bench
        if runtime.threads is not None:
            bench = dataclasses.replace(bench, threads=runtime.threads)
        if runtime.provider is not None:
            bench = dataclasses.replace(bench, accelerators=AcceleratorRequest(providers=(runtime.provider,)))
        return bench

    @staticmethod
    def _judge_placement(outcome: Outcome) -> None:
        """Rejected (kept off the front and the pick) when the accelerator it was asked to run on
        ran none of its nodes: it was a CPU run under an accelerator's name. The CPU provider's
        own candidates, and runs with no placement recorded, are left as judged."""
        provider = outcome.provider
        if provider in (None, "cpu") or outcome.accelerated_fraction != 0:
            return
        outcome.status = REJECTED
        outcome.reason = (
            f"{provider} ran none of its nodes (a CPU run under {provider}'s name): off the front"
        )

    def _judge_speed(self, outcome: Outcome, baseline: Outcome, device_name: str) -> None:
        if outcome.latency_p50_ms and baseline.latency_p50_ms:
            outcome.speedup = baseline.latency_p50_ms / outcome.latency_p50_ms
        verdict = judge_samples(
            "latency_p50_ms",
            baseline.block_medians or [],
            outcome.block_medians or [],
            seed=self.options.seed,
        )
        if verdict.verdict == "regression":
            outcome.status = REJECTED
            outcome.reason = f"slower than float on {device_name}: {verdict.reason}"
        else:
            outcome.reason = f"{verdict.verdict} vs float ({verdict.reason})"

    def _confirm(self, board: Board, search: DeviceSearch) -> None:
        """Confirm the pick against float by an interleaved A/B run (edgekit.measure.ab: both in
        one process, ABBA rounds, `confirm_rounds` round pairs at most, the Hodges-Lehmann change
        and its Wilcoxon interval), so the reported speed-up is a ratio taken side by side, not two
        numbers minutes apart on a machine whose speed drifts. Both runs are stored (stage
        "confirm", with their shared A/B id). Kept in the state: a resumed search reuses it."""
        _, chosen, _ = self.choose(search)
        if chosen in (None, FLOAT) or self.options.confirm_rounds == 0:
            search.confirmation = None
            return
        if search.confirmation and search.confirmation.get("chosen") == chosen:
            return
        self.emit({"phase": "confirm", "device": board.name, "candidate": chosen})
        known = self.known.get(chosen)
        ab = ab_compare(
            self.options.model,
            Path(search.outcomes[chosen].artifact or ""),
            board,
            self._bench_options(self._baseline_runtime()),
            AbOptions(rounds=self.options.confirm_rounds),
            # a candidate's runtime settings (threads, provider) are part of what is compared
            ignore={"threads", "providers", "providers_used", "provider_options", "provider_versions"},
            on_event=lambda e: self.emit({**e, "candidate": chosen}),
            candidate_options=self._bench_options(known.runtime if known else RuntimeSettings()),
        )
        for result, name in ((ab.measurement.baseline, FLOAT), (ab.measurement.candidate, chosen)):
            result.optimize = {"search_id": self.search_id, "candidate": name, "stage": "confirm"}
            if self.store is not None:
                self.store.add_run(result)
        latency = next((m for m in ab.comparison.metrics if m.metric == "latency_p50_ms"), None)
        change = latency.change if latency is not None else None
        search.confirmation = {
            "chosen": chosen,
            "ab_id": ab.measurement.ab_id,
            "rounds": ab.sequential.rounds_used if ab.sequential is not None else 0,
            "float_p50_ms": ab.measurement.baseline.latency_ms.p50,
            "chosen_p50_ms": ab.measurement.candidate.latency_ms.p50,
            # float's latency over the pick's, from the paired estimate of the change
            "speedup": 1 / (1 + change) if change is not None and change > -1 else None,
            "ci95": list(latency.ci95) if latency is not None and latency.ci95 else None,
            "verdict": latency.verdict if latency is not None else ab.comparison.verdict,
            "reason": latency.reason
            if latency is not None
            else "; ".join(ab.comparison.not_comparable_reasons),
        }
        self.state.save(self.out_dir)

    # -- choosing ---------------------------------------------------------------------------

    @staticmethod
    def _measured(outcomes: Sequence[Outcome]) -> list[Measured]:
        return [
            Measured(o.name, o.latency_p50_ms, float(o.size_bytes), o.accuracy_drop_points, o.energy_mj)
            for o in outcomes
            if o.status in (ACCEPTED, BASELINE) and o.latency_p50_ms is not None and o.size_bytes is not None
        ]

    @staticmethod
    def _survivors(search: DeviceSearch, tried: Sequence[Candidate]) -> list[Candidate]:
        """The accepted ones of `tried`, fastest first."""
        outcomes = search.outcomes

        def latency(candidate: Candidate) -> float | None:
            outcome = outcomes.get(candidate.name)
            return outcome.latency_p50_ms if outcome is not None and outcome.status == ACCEPTED else None

        accepted = [c for c in tried if latency(c)]
        return sorted(accepted, key=lambda c: latency(c) or 0.0)

    def choose(self, search: DeviceSearch) -> tuple[list[str], str | None, str]:
        measured = self._measured(list(search.outcomes.values()))
        front = pareto_front(measured)
        fits = {o.name: o.budget_verdict != "fail" for o in search.outcomes.values()}
        # The pick is the objective's optimum over every accepted candidate (always on the strict
        # front); the displayed front ties latencies within noise.
        chosen = pick(measured, self.options.objective, fits)
        if chosen is None:
            return [m.name for m in front], None, "nothing measured"
        outcome = search.outcomes[chosen.name]
        why = f"best {self.options.objective} among {len(measured)} measured"
        if not fits.get(chosen.name, True):
            why += "; no candidate meets every budget of the profile"
        if outcome.speedup is not None:
            why += f"; {outcome.speedup:.2f}x float's p50"
        return [m.name for m in front], chosen.name, why

    def _write_best(self, search: DeviceSearch, profile: DeviceProfile) -> Path | None:
        """Copy the current pick to <out>/<device>/best (swapped in whole), with why it won."""
        _, chosen, why = self.choose(search)
        if chosen is None:
            return None
        source = Path(search.outcomes[chosen].artifact or "")
        best = self.out_dir / slug(search.device) / "best"
        staging = best.with_name("best.staging")
        shutil.rmtree(staging, ignore_errors=True)
        if source.is_dir():
            shutil.copytree(source, staging)
        else:  # the float model itself: its external data files and a manifest go with it
            staging.mkdir(parents=True)
            files = artifact_files(source)
            for item in files:
                target = staging / item.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item.path, target)
            identity = {"path": str(source), "sha256": artifact_sha256(files),
                        "size_bytes": sum(f.size_bytes for f in files)}  # fmt: skip
            manifest = artifact_manifest(
                staging / source.name, identity, target=profile.name, recipe=[], fidelity=None
            )
            write_manifest(staging, manifest)
        (staging / "optimize.json").write_text(
            json.dumps(
                {"search_id": self.search_id, "device": search.device, "profile": profile.name,
                 "objective": self.options.objective, "chosen": chosen, "why": why,
                 "outcome": search.outcomes[chosen].to_dict()},
                indent=2,
            ) + "\n"
        )  # fmt: skip
        _swap_in(staging, best)
        return best

    def _report(self, search: DeviceSearch, profile: DeviceProfile, error: str | None = None) -> DeviceReport:
        front, chosen, why = self.choose(search)
        best = self.out_dir / slug(search.device) / "best"
        return DeviceReport(
            device=search.device,
            profile=profile.name,
            outcomes=list(search.outcomes.values()),
            front=front,
            chosen=chosen,
            chosen_reason=why,
            best_dir=str(best) if chosen is not None and best.exists() else None,
            error=error,
            confirmation=search.confirmation
            if search.confirmation and search.confirmation["chosen"] == chosen
            else None,
        )


def _swap_in(staging: Path, target: Path) -> None:
    """Replace the directory `target` by `staging`: the old one moved aside first, then removed."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def optimize(
    options: OptimizeOptions,
    devices: Sequence[Board],
    store: ResultsStore | None = None,
    on_event: EventCallback | None = None,
) -> tuple[Search, list[DeviceReport]]:
    """Search on each device in turn (one board at a time keeps the host's compression work off
    the measurements of `local`); a failing device never loses the others' reports. Raises
    UsageError (exit 2) for --provider with a board that runs TFLite models."""
    if options.providers:  # before any work: providers are onnxruntime's
        tflite = [board.name for board in devices if board.profile.facts.runtime == "tflite"]
        if tflite:
            verb = "runs" if len(tflite) == 1 else "run"
            raise UsageError(
                f"--provider: {', '.join(tflite)} {verb} TFLite models (profile facts.runtime), "
                "which take delegates, not onnxruntime providers"
            )
    options.validate()
    options.check_pairing()  # before any work: a recipe that would not be tried says why
    search = Search(options, store, on_event)
    reports = [search.run_device(device) for device in devices]
    return search, reports
