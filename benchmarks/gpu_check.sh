#!/usr/bin/env bash
# One unattended check of the GPU paths, from the repository root with the venv installed
# (installs nothing): the GPU-marked tests, the sliding-window benchmark against MONAI on
# CUDA (eager, then compiled: MONAI given torch.compile(net, freezing) and medseg compile=True,
# each in its own process), a short training run of medseg against the MONAI training script,
# and the demo on CUDA, then one summary table (about 8 minutes at most). Without CUDA it runs the CPU fallbacks
# (the GPU tests are skipped, a short CPU benchmark, a short CPU demo) and exits 0.
#
#   benchmarks/gpu_check.sh                 # PY=.venv/bin/python OUT=<temp folder> by default
#   PY=python OUT=/tmp/check benchmarks/gpu_check.sh
set -uo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-$(mktemp -d -t medseg-gpu-check-XXXX)}
mkdir -p "$OUT"

if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    DEVICE=cuda
    CARD=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))")
    BENCH_ARGS=(--device cuda --repeat 3)
    # compiled rows (MONAI-c and medseg-c, inductor, frozen weights) for the 3D case; optional, bounded
    COMPILED_ARGS=(--device cuda --repeat 3 --case "3D 256" --precision bf16 fp32 --compile)
    TRAIN_ARGS=(--device cuda --iterations 20 --workers 2 --precisions bfloat16)
    DEMO_ARGS=(--set train.device=cuda --set infer.device=cuda)
else
    DEVICE=cpu
    CARD="no CUDA device: CPU fallback"
    BENCH_ARGS=(--device cpu --repeat 1 --case "2D" --precision fp32)
    COMPILED_ARGS=(--device cpu --repeat 1 --case "2D" --precision fp32 --compile)
    TRAIN_ARGS=(--device cpu --iterations 3 --workers 0 --precisions float32)
    DEMO_ARGS=(--iterations 20 --set train.device=cpu --set infer.device=cpu)
fi

declare -a ROWS=()
step() {  # step NAME LOG COMMAND...: run, time and record one step
    local name=$1 log=$2 start status
    shift 2
    start=$EPOCHREALTIME
    "$@" >"$log" 2>&1
    status=$?
    ROWS+=("$(printf '%-10s %-6s %8.1f  %s' "$name" "$([ $status -eq 0 ] && echo ok || echo FAIL:$status)" \
        "$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')" "$log")")
    return 0
}

step gpu-tests "$OUT/tests.log" "$PY" -m pytest -q -p no:cacheprovider -m gpu tests
step bench "$OUT/bench.log" "$PY" benchmarks/bench_sliding_window.py "${BENCH_ARGS[@]}"
# optional: compile times on a fresh machine are unknown (two engines compile), so it is cut off
# after 240 s and does not fail the check
step compiled "$OUT/compiled.log" timeout 240 "$PY" benchmarks/bench_sliding_window.py "${COMPILED_ARGS[@]}"
# bounded too: a slow machine is no failure, a crash is
step training "$OUT/training.log" timeout 150 "$PY" benchmarks/bench_training.py "${TRAIN_ARGS[@]}"
step demo "$OUT/demo.log" "$PY" -m medseg demo --out "$OUT/demo" --no-progress "${DEMO_ARGS[@]}"

echo "medseg GPU check on $CARD (device $DEVICE); logs in $OUT"
printf '%-10s %-6s %8s  %s\n' step status seconds log
printf '%s\n' "${ROWS[@]}"
echo
grep -E '^(device|case|[23]D )' "$OUT/bench.log" || true
grep -E '^(3D|2D) .*(MONAI|medseg)' "$OUT/compiled.log" || true
grep -E '^ *(workers|[0-9]+ )' "$OUT/training.log" || true
tail -n 3 "$OUT/tests.log"
grep -iE 'dice|rand|seconds' "$OUT/demo.log" | tail -n 5 || true
for row in "${ROWS[@]}"; do  # compiled rows never fail the check, training only when it did not time out
    case $row in compiled*) ;; "training   FAIL:124"*) ;; *FAIL*) exit 1 ;; esac
done
exit 0
