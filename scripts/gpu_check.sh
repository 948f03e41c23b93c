#!/usr/bin/env bash
# The GPU check: on a machine with one GPU, within 8 minutes, the CUDA tests, CPU vs CUDA rollouts, simulation
# throughput from 1,024 to 65,536 worlds (plain and as a CUDA graph), the policy forward as a CUDA graph,
# training throughput, torchrun with one rank (NCCL) and time to target (compile time included where the preset
# compiles). Each step has its own time limit and writes its result into $OUT/gpu_check.json as it ends (a run
# cut short still tells what it reached). Without a GPU (or with --rehearsal) every step runs at tiny sizes on
# the CPU, GPU parts recorded as skipped: the rehearsal. Exit status: 0 when every step passed.
#
#   scripts/gpu_check.sh [--rehearsal]        OUT=runs/gpu_check  PYTHON=python
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/gpu_check}"
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
rm -f "$OUT/gpu_check.json"

REHEARSAL=""
if [ "${1:-}" = "--rehearsal" ] || ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    REHEARSAL="--rehearsal"
    echo "gpu_check: rehearsal (no GPU or --rehearsal): tiny sizes on the CPU, GPU parts skipped"
fi

status=0
run_step() {  # name, seconds
    local name="$1" seconds="$2"
    echo "== $name (at most ${seconds} s)"
    timeout --kill-after=10 "$seconds" "$PYTHON" -m fuyao.perf.gpu_check "$name" --out "$OUT" --budget "$((seconds - 10))" $REHEARSAL
    local rc=$?
    if [ $rc -ne 0 ]; then
        echo "gpu_check: step $name exited $rc"
        status=1
    fi
}

# Most important first: correctness on CUDA, then the numbers.
run_step env 20
run_step cuda_tests 90
run_step cpu_vs_cuda 60
run_step sim 85
run_step policy 25
run_step train 75
run_step ddp 60
run_step time_to_target 60
echo "gpu_check: results in $OUT/gpu_check.json (exit $status)"
exit $status
