"""An ONNX model on onnxruntime, on the execution providers asked for (runtimes/providers.py),
with the node placement onnxruntime really made.

Placement (docs/protocol.md, `bench` result `runtime.placement`) comes from the runtime, never from
`session.get_providers()` (which lists a provider that got 0 nodes): onnxruntime >= 1.24 records
the graph assignment (`session.record_ep_graph_assignment_info`, the original nodes even inside a
compiled subgraph); older builds (Jetson wheels) log it in the verbose session log, captured on
fd 2 while the session is created and parsed by `placement_from_log` (a compiled subgraph counts
as one node there). While the session is created, fd 1 points at fd 2: nothing a runtime or a
plugin prints can reach the bench child's JSON-lines stdout."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from edgekit_agent.failure import AgentFailure, first_line, runtime_reason
from edgekit_agent.runtimes import engine_cache
from edgekit_agent.runtimes.describe import describe_outputs
from edgekit_agent.runtimes.providers import (
    BY_EP_NAME,
    CPU_EP,
    PROVIDERS,
    Resolved,
    canonical,
    missing,
    resolve,
)

ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}
RECORD_ASSIGNMENT = "session.record_ep_graph_assignment_info"
# test hook: "1" takes the placement from the verbose log even where the assignment info exists
TEST_PLACEMENT_LOG_ENV = "EDGEKIT_AGENT_TEST_PLACEMENT_LOG"
# The verbose session log's placement lines (onnxruntime session_state.cc,
# VerifyEachNodeIsAssignedToAnEp; the same keys onnxruntime_perf_test's fetch_ep_node_info reads).
PLACED_RE = re.compile(r"(?:Node\(s\)|All nodes) placed on \[([^\]]+)\]\. Number of nodes: (\d+)")
NODE_RE = re.compile(r"VerifyEachNodeIsAssignedToAnEp\]\s{3}(\S+) \((.*)\)\s*$")
NOT_AVAILABLE_RE = re.compile(r"Specified provider '([^']+)' is not in available provider names")
# onnxruntime's profile: the `cat: "Session"` events of the session's creation -> cold_start_ms keys
SESSION_EVENTS = {
    "model_loading_uri": "session_load",
    "model_loading_array": "session_load",
    "session_initialization": "session_init",
}


def session_times(events: Any) -> Dict[str, float]:
    """cold_start_ms `session_load` and `session_init` (ms) from onnxruntime's profile JSON (a
    list of Chrome trace events, exact: `{"cat" : "Session", ..., "dur" :898, ..., "name"
    :"model_loading_uri", "args" : {}}`, `dur` in microseconds; onnxruntime common/profiler.cc).
    Events of the same name add up; a key without its event is left out."""
    times: Dict[str, float] = {}
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict) or event.get("cat") != "Session":
            continue
        key = SESSION_EVENTS.get(str(event.get("name")))
        dur = event.get("dur")
        if key is None or isinstance(dur, bool) or not isinstance(dur, (int, float)):
            continue
        times[key] = times.get(key, 0.0) + dur / 1000.0
    return times


def _fraction(by_provider: Dict[str, Dict[str, Any]], exact: bool) -> Optional[float]:
    """Share of nodes on non-CPU providers; None when a log's fused counts make it unknowable."""
    total = sum(p["nodes"] for p in by_provider.values())
    accelerated = sum(p["nodes"] for ep, p in by_provider.items() if ep != CPU_EP)
    if total == 0:
        return None
    if exact or accelerated == 0 or accelerated == total:
        return round(accelerated / total, 6)
    return None


def placement_from_assignment(subgraphs: List[Tuple[str, List[str]]]) -> Dict[str, Any]:
    """Placement from onnxruntime's graph assignment info: [(ep_name, [op_type of each node])].

    Counts are taken at partitioning (after level-1 rewrites, before CPU fusions), with the
    original nodes of each compiled subgraph, so fractions compare across providers."""
    by_provider: Dict[str, Dict[str, Any]] = {}
    for ep_name, op_types in subgraphs:
        entry = by_provider.setdefault(ep_name, {"nodes": 0, "subgraphs": 0, "op_types": {}})
        entry["nodes"] += len(op_types)
        entry["subgraphs"] += 1
        for op_type, count in Counter(op_types).items():
            entry["op_types"][op_type] = entry["op_types"].get(op_type, 0) + count
    return {
        "source": "assignment_info",
        "total_nodes": sum(p["nodes"] for p in by_provider.values()),
        "by_provider": by_provider,
        "accelerated_fraction": _fraction(by_provider, exact=True),
    }


def placement_from_log(text: str) -> Optional[Dict[str, Any]]:
    """Placement from onnxruntime's verbose session log (severity 0, verbosity 1); None without
    "Node placements" lines.

    Lines (exact, onnxruntime session_state.cc):
    `... VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [ggml]. Number of nodes: 1`,
    `... VerifyEachNodeIsAssignedToAnEp]   OpType (node name)` for each node of the block above,
    `... VerifyEachNodeIsAssignedToAnEp]  All nodes placed on [CPUExecutionProvider]. Number of nodes: 10`
    (no node list). Counts are after all optimizations and a compiled subgraph is ONE node, so
    `accelerated_fraction` is given only when it is exact (0.0 or 1.0), else null."""
    by_provider: Dict[str, Dict[str, Any]] = {}
    current: Optional[Dict[str, Any]] = None
    for line in text.splitlines():
        placed = PLACED_RE.search(line)
        if placed:
            ep_name, count = placed.group(1), int(placed.group(2))
            current = by_provider.setdefault(ep_name, {"nodes": 0, "subgraphs": 0, "op_types": {}})
            current["nodes"] += count
            current["subgraphs"] += count if ep_name != CPU_EP else 0
            continue
        node = NODE_RE.search(line)
        if node and current is not None:
            op_type = node.group(1)
            current["op_types"][op_type] = current["op_types"].get(op_type, 0) + 1
            continue
        if "VerifyEachNodeIsAssignedToAnEp" not in line:
            current = None
    if not by_provider:
        return None
    for ep_name, entry in by_provider.items():
        if ep_name == CPU_EP:
            entry["subgraphs"] = entry["nodes"]
    return {
        "source": "verbose_log",
        "total_nodes": sum(p["nodes"] for p in by_provider.values()),
        "by_provider": by_provider,
        "accelerated_fraction": _fraction(by_provider, exact=False),
    }


@contextlib.contextmanager
def session_fds(capture_stderr: bool) -> Iterator[List[bytes]]:
    """While the session is created: fd 1 -> fd 2 (stdout is the bench child's JSON channel) and,
    with capture_stderr, fd 2 -> a temporary file whose bytes are appended to the yielded list.
    The captured warning and error lines (with [W:...] or [E:...]) go on to the real stderr."""
    captured: List[bytes] = []
    sys.stdout.flush()
    sys.stderr.flush()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryFile()) if capture_stderr else None
        saved_out = os.dup(1)
        saved_err = os.dup(2)
        try:
            os.dup2(saved_err, 1)
            if tmp is not None:
                os.dup2(tmp.fileno(), 2)
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_err, 2)
            os.dup2(saved_out, 1)
            os.close(saved_err)
            os.close(saved_out)
        if tmp is not None:
            tmp.seek(0)
            captured.append(tmp.read())
            kept = [line for line in captured[0].splitlines(True) if b"[W:" in line or b"[E:" in line]
            if kept:
                os.write(2, b"".join(kept))


def _options_for(
    resolved: List[Resolved], provider_options: Optional[Dict[str, Any]]
) -> Dict[str, Dict[str, str]]:
    """{edgekit name: {key: str value}} for the resolved providers; options naming an unknown
    provider are a BadRequest, options of a provider that is not used (dropped from a profile) are
    left out."""
    given: Dict[str, Dict[str, str]] = {}
    for name, options in (provider_options or {}).items():
        given[canonical(name)] = {str(k): str(v) for k, v in options.items()}
    return {r.provider.name: given.get(r.provider.name, {}) for r in resolved}


def ignored_options(
    given: Dict[str, Dict[str, str]], taken: Dict[str, Dict[str, str]]
) -> Dict[str, Dict[str, str]]:
    """{provider: {key: value}} given but not among the options the session reports for that
    provider (onnxruntime silently drops options a provider does not know). A plugin EP reports
    back every option it was given (ggml: even `foo`), so nothing is ignored there. Pure."""
    ignored = {}
    for name, options in given.items():
        left = {k: v for k, v in options.items() if k not in taken.get(name, {})}
        if left:
            ignored[name] = left
    return ignored


def refused(ort: Any, path: str, resolved: List[Resolved], exc: BaseException) -> AgentFailure:
    """The failure for a session onnxruntime would not create: ProviderFailed (exit 3 on the host)
    when non-CPU providers were asked for and the same model loads on the CPU provider alone (the
    provider refused it, e.g. ggml's "device=gpu requested but no gpu backend is available"),
    else ModelLoadError. The message is one line without onnxruntime's C++ source paths."""
    reason = runtime_reason(str(exc)) or exc.__class__.__name__
    others = [r.provider.name for r in resolved if r.provider.name != "cpu"]
    if others:
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            with session_fds(False):
                ort.InferenceSession(path, options, providers=[CPU_EP])
        except Exception:
            pass  # broken on the CPU too: the model's fault
        else:
            lowered = reason.lower()
            named = [n for n in others if n in lowered or PROVIDERS[n].ep_name.lower() in lowered] or others
            return AgentFailure(
                "ProviderFailed",
                "provider %s refused the session (the model loads on the CPU provider): %s"
                % (", ".join(named), reason),
                provider=named[0],
                providers=named,
            )
    return AgentFailure("ModelLoadError", "onnxruntime cannot load %s: %s" % (path, reason))


class OnnxRuntimeModel:
    name = "onnxruntime"

    def __init__(
        self,
        path: str,
        threads: Optional[int],
        providers: Optional[List[str]] = None,
        provider_options: Optional[Dict[str, Any]] = None,
        chosen_by: Optional[str] = None,
        workdir: Optional[str] = None,
        fresh_engine: bool = False,
        engine_cache_max_mb: float = engine_cache.DEFAULT_MAX_MB,
    ) -> None:
        """Raises AgentFailure: BadRequest (unknown provider), ProviderMissing, ProviderFailed (a
        provider refused a session the CPU provider takes), ModelLoadError.
        workdir: the agent's workdir (the TensorRT engine cache goes under it; default ~/.edgekit)."""
        import onnxruntime as ort

        self.chosen_by = chosen_by or ("explicit" if providers else "default")
        self.requested_providers = [canonical(n) for n in (providers or ["cpu"])]
        resolved = resolve(ort, list(providers or ["cpu"]), self.chosen_by)
        applied = _options_for(resolved, provider_options)
        # only now, with TensorRT resolved: a missing one wrote nothing
        self.cache = self._open_engine_cache(path, resolved, applied, workdir, fresh_engine)
        options = ort.SessionOptions()
        # profiled while the session is created (_read_profile): the cold-start split
        self.profile_dir: Optional[str] = tempfile.mkdtemp(prefix="edgekit-ort-profile-")
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(self.profile_dir, "session")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        recorded = hasattr(ort.InferenceSession, "get_provider_graph_assignment_info") and (
            os.environ.get(TEST_PLACEMENT_LOG_ENV) != "1"
        )
        if recorded:
            options.add_session_config_entry(RECORD_ASSIGNMENT, "1")
        else:  # the placement is in the verbose log only
            options.log_severity_level = 0
            options.log_verbosity_level = 1
        kwargs: Dict[str, Any] = {}
        if any(r.plugin_devices for r in resolved):
            for r in resolved:
                if r.provider.name == "cpu":
                    continue  # the CPU is always the fallback of a plugin-EP session
                if not r.plugin_devices:
                    raise AgentFailure(
                        "BadRequest",
                        "provider %s cannot be combined with a plugin provider on onnxruntime %s"
                        % (r.provider.name, ort.__version__),
                        param="providers",
                    )
                options.add_provider_for_devices(r.plugin_devices, applied[r.provider.name])
        else:
            kwargs["providers"] = [(r.provider.ep_name, applied[r.provider.name]) for r in resolved]
        try:
            with warnings.catch_warnings(record=True) as caught, session_fds(not recorded) as log:
                warnings.simplefilter("always")
                started = time.perf_counter_ns()
                self.session = ort.InferenceSession(path, options, **kwargs)
                # the cold start's load: the session creation alone, not edgekit's provider lookups
                self.load_ns = time.perf_counter_ns() - started
            self.session_ms = self._read_profile()
        except AgentFailure:
            self._drop_profile()
            raise
        except Exception as exc:
            self._drop_profile()
            raise refused(ort, path, resolved, exc) from None
        for warning in caught:  # a provider onnxruntime dropped after all: never a silent CPU run
            dropped = NOT_AVAILABLE_RE.search(str(warning.message))
            if dropped:
                name = BY_EP_NAME.get(dropped.group(1).lower())
                provider = PROVIDERS[name] if name else PROVIDERS["cpu"]
                raise missing(provider, "onnxruntime did not take %s" % dropped.group(1))
        self.cache_reply: Optional[Dict[str, Any]] = (
            engine_cache.close_cache(self.cache, engine_cache_max_mb) if self.cache is not None else None
        )
        self.version = ort.__version__
        self.threads = threads
        self.providers = self.session.get_providers()
        reported = self.session.get_provider_options()
        taken = {r.provider.name: dict(reported.get(r.provider.ep_name) or {}) for r in resolved}
        # as applied: what the session reports (a provider drops options it does not know)
        self.provider_options = {
            name: engine_cache.relative_options(options, self.cache if name == "tensorrt" else None)
            for name, options in taken.items()
            if name != "cpu" or options
        }
        self.ignored_provider_options = ignored_options(applied, taken)
        self.provider_versions = {r.provider.package: r.version for r in resolved if r.version}
        if recorded:
            self.placement: Optional[Dict[str, Any]] = placement_from_assignment(
                [
                    (sg.ep_name, [n.op_type for n in sg.get_nodes()])
                    for sg in self.session.get_provider_graph_assignment_info()
                ]
            )
        else:
            self.placement = placement_from_log(b"".join(log).decode("utf-8", "replace"))
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.output_types = [o.type for o in self.session.get_outputs()]

    @staticmethod
    def _open_engine_cache(
        path: str,
        resolved: List[Resolved],
        applied: Dict[str, Dict[str, str]],
        workdir: Optional[str],
        fresh: bool,
    ) -> Optional[engine_cache.EngineCache]:
        """The TensorRT engine cache of this artifact (runtimes/engine_cache.py), its options put
        into `applied`; None without TensorRT or when the user set trt_engine_cache_path."""
        if not any(r.provider.name == "tensorrt" for r in resolved):
            return None
        options = applied["tensorrt"]
        if "trt_engine_cache_path" in options:
            return None
        root = os.path.abspath(os.path.expanduser(workdir or "~/.edgekit"))
        try:
            cache = engine_cache.open_cache(
                root,
                engine_cache.artifact_sha256(path),
                engine_cache.tensorrt_version(),
                options,
                fresh,
            )
        except OSError as exc:
            raise AgentFailure(
                "ModelLoadError", "TensorRT engine cache under %s: %s" % (root, first_line(exc))
            ) from None
        applied["tensorrt"] = engine_cache.with_cache_options(options, cache.directory)
        return cache

    def _drop_profile(self) -> None:
        if self.profile_dir is not None:
            shutil.rmtree(self.profile_dir, ignore_errors=True)
            self.profile_dir = None

    def _read_profile(self) -> Dict[str, float]:
        """Stop profiling right after the session is created (so no inference is profiled: a
        profiled first inference was ~40% slower on a 10-node model), read the cold-start split
        {session_load, session_init} (ms) from the profile and delete it."""
        if self.profile_dir is None:
            return {}
        times: Dict[str, float] = {}
        try:
            session = getattr(self, "session", None)
            written = session.end_profiling() if session is not None else ""
            if written:
                with open(written, "r", encoding="utf-8") as handle:
                    times = session_times(json.load(handle))
        except (OSError, ValueError):
            times = {}
        finally:
            self._drop_profile()
        return times

    def runtime_info(self) -> Dict[str, Any]:
        """The provider fields of the bench result's `runtime` (docs/protocol.md)."""
        return {
            "requested_providers": self.requested_providers,
            "provider_options": self.provider_options,
            "ignored_provider_options": self.ignored_provider_options,
            "provider_versions": self.provider_versions,
            "chosen_by": self.chosen_by,
            "placement": self.placement,
            "engine_cache": self.cache_reply,
        }

    def input_names(self) -> List[str]:
        return [i.name for i in self.session.get_inputs()]

    def declared_inputs(self) -> Dict[str, Any]:
        """{name: (dims, dtype)}: dims as declared (ints, or names/None when open)."""
        return {i.name: (list(i.shape), ORT_TYPES.get(i.type, i.type)) for i in self.session.get_inputs()}

    def make_runner(self, feeds: Dict[str, Any]) -> Callable[[], Any]:
        session, names = self.session, self.output_names

        def run() -> Any:
            return session.run(names, feeds)

        return run

    def outputs(self, values: Any) -> List[Dict[str, Any]]:
        return describe_outputs(self.output_names, values, self.output_types)
