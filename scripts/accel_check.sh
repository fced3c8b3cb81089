#!/usr/bin/env bash
# Accelerator check for a board or host with CUDA / TensorRT (or OpenVINO) installed. Not part of CI.
#
# For a real model, benches each available accelerator provider and `--provider cpu`, and prints
# for each: p50, cold start (load = session_load + session_init, first inference), placement
# (which provider ran how many nodes) and, for TensorRT, whether the engine came from the cache
# (the provider is benched twice: the second run must say hit=true).
#
# Usage:   scripts/accel_check.sh [MODEL.onnx] [DEVICE]
#   MODEL   default: the bundled demo model (edgekit/data/demo_digits.onnx); a real vision model
#           (e.g. tests/zoo models, `scripts/zoo_models.sh`) says more
#   DEVICE  default: local. For a board over SSH, name it as in `edgekit devices list`; set
#           PROVIDERS="tensorrt cuda" then, since the probe below runs on this machine.
#   PROVIDERS  space-separated edgekit provider names to try (default: probed from this machine's
#              onnxruntime: tensorrt, cuda, openvino when available)
#   RUNS       timed inferences per bench (default 200)
#
# On a Jetson (JetPack 6, CUDA 12.6), before running:
#   sudo apt install nvidia-jetpack                         # CUDA, cuDNN, TensorRT
#   pip install onnxruntime-gpu --index-url https://pypi.jetson-ai-lab.io/jp6/cu126
#   python3 -c "import onnxruntime as o; print(o.__version__, o.get_available_providers())"
#     -> [..., 'TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
# (JetPack 4/5: the onnxruntime-gpu wheels of the Jetson Zoo, https://elinux.org/Jetson_Zoo#ONNX_Runtime.)
# On an x86_64 host with an NVIDIA GPU: pip uninstall onnxruntime && pip install onnxruntime-gpu
# (TensorRT: pip install tensorrt). Intel CPU/GPU/NPU: pip install onnxruntime-ep-openvino.
#
# Exit status: 0 when every provider benched and placed at least one node on the accelerator,
# 1 otherwise (a provider missing, all nodes on the CPU, or no engine cache hit on the second
# TensorRT run).
set -u

MODEL="${1:-}"
DEVICE="${2:-local}"
RUNS="${RUNS:-200}"
EDGEKIT="${EDGEKIT:-python3 -m edgekit.cli.main}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

if [ -z "$MODEL" ]; then
    MODEL="$(python3 -c 'from edgekit.data import demo_model_path; print(demo_model_path())')"
fi

if [ -z "${PROVIDERS:-}" ]; then
    PROVIDERS="$(python3 - <<'EOF'
import onnxruntime as ort
names = set(ort.get_available_providers())
names |= {d.ep_name for d in getattr(ort, "get_ep_devices", lambda: [])()}
wanted = [("TensorrtExecutionProvider", "tensorrt"), ("CUDAExecutionProvider", "cuda"),
          ("OpenVINOExecutionProvider", "openvino")]
print(" ".join(name for ep, name in wanted if ep in names))
EOF
)"
fi
echo "onnxruntime: $(python3 -c 'import onnxruntime as o; print(o.__version__, o.get_available_providers())')"
echo "model: $MODEL   device: $DEVICE   providers to check: ${PROVIDERS:-none found}"

summary() {  # summary FILE LABEL: one line from a bench --json result
    python3 - "$1" "$2" <<'EOF'
import json, sys
from edgekit.cli.output import placement_line
from edgekit.core.result import Result
result = Result.model_validate(json.loads(open(sys.argv[1]).read()))
cold, runtime = result.cold_start_ms, result.runtime
cache = runtime.engine_cache if runtime else None
print(f"{sys.argv[2]:>10}: p50 {result.latency_ms.p50:.4g} ms; cold start load {cold.load} ms "
      f"(session_load {cold.session_load}, session_init {cold.session_init}), first {cold.first_inference} ms; "
      f"{placement_line(runtime) or 'placement: not reported'}"
      + (f"; engine cache hit={cache.hit} ({cache.size_bytes} bytes)" if cache else ""))
placement = runtime.placement if runtime else None
fraction = placement.accelerated_fraction if placement else None
sys.exit(0 if sys.argv[2] == "cpu" or (fraction or 0) > 0 else 1)
EOF
}

bench() {  # bench PROVIDER OUTFILE
    $EDGEKIT bench "$MODEL" --device "$DEVICE" --provider "$1" --runs "$RUNS" --no-store --json \
        >"$2" 2>"$2.err"
}

status=0
if bench cpu "$OUT/cpu.json"; then summary "$OUT/cpu.json" cpu; else
    echo "       cpu: FAILED: $(tail -n 1 "$OUT/cpu.json.err")"; status=1
fi
for provider in $PROVIDERS; do
    if ! bench "$provider" "$OUT/$provider.json"; then
        echo "$(printf '%10s' "$provider"): FAILED: $(tail -n 1 "$OUT/$provider.json.err")"
        status=1
        continue
    fi
    summary "$OUT/$provider.json" "$provider" || status=1
    if [ "$provider" = "tensorrt" ]; then  # the second run must load the cached engine
        bench tensorrt "$OUT/tensorrt2.json" && summary "$OUT/tensorrt2.json" "tensorrt#2" || status=1
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["runtime"]; sys.exit(0 if (r.get("engine_cache") or {}).get("hit") else 1)' \
            "$OUT/tensorrt2.json" 2>/dev/null || { echo "  tensorrt#2: no engine cache hit"; status=1; }
    fi
done
exit $status
