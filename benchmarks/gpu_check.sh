#!/usr/bin/env bash
# The CUDA path in one script: the CUDA tests, the CLI's two-phase loop on the GPU, and speed.py's
# (a) VoG overhead, (b) time to a ranked relabel list and (d) VoG memory with --device cuda.
#
# Usage (from the repository root):
#   bash benchmarks/gpu_check.sh DATA_DIR [OUT_DIR] [WHEEL_DIR]
# DATA_DIR holds retinamnist.npz and hmnist_8_8_L.csv; OUT_DIR (default: .) receives the logs and
# speed_gpu_cuda.json; WHEEL_DIR, when given, holds wheels of the dependencies missing on the machine
# (skorch, modAL-python, cleanlab, termcolor), installed with --no-index into a temporary folder.
# DEVICE (default cuda) and EPOCHS (default 20) come from the environment.
set -u
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
DATA_DIR=${1:?usage: gpu_check.sh DATA_DIR [OUT_DIR] [WHEEL_DIR]}
OUT_DIR=${2:-.}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-20}
PY=${PYTHON:-python3}
start=$(date +%s)
if [ -n "${3:-}" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/modal_noisy_site "$3"/*.whl || exit 1
    export PYTHONPATH=/tmp/modal_noisy_site:$PWD
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
"$PY" - <<'EOF'
import platform

import cleanlab, numpy, sklearn, skorch, torch

import modal_noisy

print("python", platform.python_version(), "torch", torch.__version__, "sklearn", sklearn.__version__,
      "skorch", skorch.__version__, "cleanlab", cleanlab.__version__, "numpy", numpy.__version__,
      "modal_noisy", modal_noisy.__version__)
print("cuda:", torch.cuda.is_available() and torch.cuda.get_device_name())
EOF

echo "== 1. CUDA tests"
timeout 120 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_coteaching.py tests/test_strategies.py \
    2>&1 | tee "$OUT_DIR/gpu_pytest.txt"

echo "== 2. the CLI's two-phase loop on $DEVICE (HAM10000 8x8, 40% noise)"
timeout 100 "$PY" -m modal_noisy.cli run --hmnist-csv "$DATA_DIR/hmnist_8_8_L.csv" --noise 0.4 \
    --selection loss+vog --class-aware --decision balanced --epochs "$EPOCHS" --rounds 2 --budget 200 \
    --device "$DEVICE" --seed 0 --out /tmp/modal_noisy_run 2>&1 | tail -25 | tee "$OUT_DIR/gpu_cli.txt"

echo "== 3. speed.py (a), (b), (d) on $DEVICE"
timeout 270 "$PY" benchmarks/speed.py --device "$DEVICE" --datasets digits hmnist retinamnist \
    --epochs "$EPOCHS" --parts a b d --data-dir "$DATA_DIR" --tag gpu 2>&1 | tee "$OUT_DIR/gpu_speed.txt"
cp benchmarks/results/speed_gpu_*.json "$OUT_DIR/" 2>/dev/null
echo "elapsed $(( $(date +%s) - start )) s"
