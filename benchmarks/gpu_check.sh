#!/usr/bin/env bash
# One unattended check of the GPU paths, from the repository root: the GPU-marked tests, the
# sliding-window benchmark against MONAI on CUDA (eager, then compiled: MONAI given
# torch.compile(net, freezing) and medseg compile=True, each in its own process), a short
# training run of medseg against the MONAI training script, and the demo on CUDA, then one
# summary table (under 10 minutes). Without CUDA it runs the CPU fallbacks (the GPU tests are
# skipped, a short CPU benchmark, a short CPU demo) and exits 0.
#
#   benchmarks/gpu_check.sh                 # PY=.venv/bin/python OUT=<temp folder> by default
#   PY=python OUT=/tmp/check benchmarks/gpu_check.sh
#
# It installs nothing from the network. On a machine whose Python has torch but not medseg's
# other dependencies, carry them as wheels in .whl/ (benchmarks/gpu_wheels.sh downloads them):
# they are installed offline into a temporary folder first, and medseg is run from this checkout.
# $OUT holds only the logs (one per step); the demo's run folder goes to a temporary folder.
set -uo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-$(mktemp -d -t medseg-gpu-check-XXXX)}
WORK=$(mktemp -d -t medseg-gpu-work-XXXX)
mkdir -p "$OUT"
if [ -d .whl ] && ! "$PY" -c "import monai, medseg" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" .whl/*.whl || exit 1
    export PYTHONPATH="$WORK/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    DEVICE=cuda
    CARD=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))")
    BENCH_ARGS=(--device cuda --repeat 2)
    # compiled rows (MONAI-c and medseg-c, inductor, frozen weights), one case per step so that a
    # slow compilation loses one case only; fp32 (the eager rows give bf16's agreement)
    COMPILED_3D=(--device cuda --repeat 3 --case "3D 256" --precision fp32 --compile)
    COMPILED_2D=(--device cuda --repeat 3 --case "2D" --precision fp32 --compile)
    TRAIN_ARGS=(--device cuda --iterations 40 --workers 2 --precisions float32 bfloat16)
    DEMO_ARGS=(--set train.device=cuda --set infer.device=cuda)
else
    DEVICE=cpu
    CARD="no CUDA device: CPU fallback"
    BENCH_ARGS=(--device cpu --repeat 1 --case "2D" --precision fp32)
    COMPILED_3D=(--device cpu --repeat 1 --case "3D 96" --precision fp32 --compile)
    COMPILED_2D=(--device cpu --repeat 1 --case "2D" --precision fp32 --compile)
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

# only the modules that hold GPU-marked tests: the others need packages a bare GPU machine lacks
mapfile -t GPU_TESTS < <(grep -rl "pytest.mark.gpu" tests)
# Every step is bounded, so that the whole check ends within 10 minutes; the most wanted numbers
# come first, and each step's log is complete as soon as the step ends.
step gpu-tests "$OUT/tests.log" timeout 60 "$PY" -m pytest -q -p no:cacheprovider -m gpu "${GPU_TESTS[@]}"
step bench "$OUT/bench.log" timeout 100 "$PY" benchmarks/bench_sliding_window.py "${BENCH_ARGS[@]}"
# optional: compile times on a fresh machine are unknown (two engines compile), so a time-out
# here does not fail the check
step compiled3d "$OUT/compiled3d.log" timeout 140 "$PY" benchmarks/bench_sliding_window.py "${COMPILED_3D[@]}"
step compiled2d "$OUT/compiled2d.log" timeout 110 "$PY" benchmarks/bench_sliding_window.py "${COMPILED_2D[@]}"
# bounded too: a slow machine is no failure, a crash is
step training "$OUT/training.log" timeout 80 "$PY" benchmarks/bench_training.py "${TRAIN_ARGS[@]}"
step demo "$OUT/demo.log" timeout 80 "$PY" -m medseg demo --out "$WORK/demo" --no-progress "${DEMO_ARGS[@]}"

echo "medseg GPU check on $CARD (device $DEVICE); logs in $OUT"
printf '%-10s %-6s %8s  %s\n' step status seconds log
printf '%s\n' "${ROWS[@]}"
echo
grep -E '^(device|case|[23]D )' "$OUT/bench.log" || true
grep -hE '^(3D|2D) .*(MONAI|medseg|net-c)' "$OUT/compiled3d.log" "$OUT/compiled2d.log" || true
grep -E '^ *(workers|[0-9]+ )' "$OUT/training.log" || true
tail -n 3 "$OUT/tests.log"
grep -iE 'dice|rand|seconds' "$OUT/demo.log" | tail -n 5 || true
for row in "${ROWS[@]}"; do  # compiled rows never fail the check, the others only when they did not time out
    case $row in compiled*) ;; *FAIL:124*) ;; *FAIL*) exit 1 ;; esac
done
exit 0
