#!/usr/bin/env bash
# The prepared check for a machine with a GPU and no network (issue 17): about 2-4 minutes on a
# GPU, nothing downloaded. Prints
#   1. the adapters (`mixup backends`: the webgpu row names the one --backend webgpu uses);
#   2. the static WebGPU engine's training step at depth 50, batch 128, 28x28 crops, for erm, input
#      mixup and feature-map mixup (bench/engine.ts --device gpu): dispatches, memory, ms per step
#      (host + device), img/s, achieved TFLOPS, and the host ms per step spent inside trainStep,
#      with the modelled FLOPs, bytes and waves per kernel class and stage; then erm again with
#      Dawn's disable_robustness and skip_validation+disable_robustness toggles (MIXUP_DAWN_TOGGLES);
#      with timestamp-query, one profiled step's ms, TFLOPS and GB/s per kernel class and stage; and
#      where python3 has a CUDA torch, the same step in PyTorch eager and torch.compile
#      (scripts/torch-step.py) with the ratio of img/s;
#   3. the host-only time per step on Dawn's null backend (bench/engine.ts --device null), the
#      ceiling the host alone allows;
#   4. with --data-dir, one real-data epoch of configs/mixup.json on --backend webgpu (the epoch
#      line with its time and samples/s; the run goes to a temporary directory, removed after).
#
# Usage: scripts/gpu-check.sh [--quick] [--data-dir DIR] [--gpu N]
#   --quick     depth 8, batch 16, a few steps, a 256-image epoch: to check the script itself
#               (e.g. on lavapipe, the CPU's Vulkan driver; its numbers mean nothing)
#   --data-dir  CIFAR-10 (the .rec files or cifar-10-batches-bin) for the epoch
#   --gpu N     the Nth hardware adapter for the epoch (mixup --gpu); the bench uses Dawn's default
# Builds dist/ first when it is missing (tsc, offline).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

quick=0
data=""
gpu=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) quick=1 ;;
    --data-dir)
      [[ $# -ge 2 ]] || { echo "gpu-check.sh: --data-dir needs a directory" >&2; exit 2; }
      data=$2
      shift
      ;;
    --gpu)
      [[ $# -ge 2 ]] || { echo "gpu-check.sh: --gpu needs an index" >&2; exit 2; }
      gpu=(--gpu "$2")
      shift
      ;;
    -h | --help)
      sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "gpu-check.sh: unknown option $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done
[[ -z $data || -d $data ]] || { echo "gpu-check.sh: --data-dir $data: no such directory" >&2; exit 2; }

cd "$ROOT"
[[ -f dist/bench/engine.js && -f dist/src/cli.js ]] || node node_modules/typescript/bin/tsc -p tsconfig.json

if [[ $quick == 1 ]]; then
  depth=8 batch=16 steps=3 warmup=1 nullsteps=5
  epoch=(--set model.depth=8 --set data.limit=256 --set data.valLimit=128 --set train.batchSize=32 --set train.evalBatchSize=64)
else
  depth=50 batch=128 steps=30 warmup=3 nullsteps=100
  epoch=()
fi

echo "== adapters"
"${MIXUP[@]}" "${gpu[@]}" backends
echo
echo "== static engine on the GPU: depth $depth, batch $batch, $steps timed steps"
# the bench's lines, kept to read our img/s for the PyTorch ratio; removed on every exit (a bench that
# finds no adapter exits 2 here, and set -e ends the script)
enginelog="${TMPDIR:-/tmp}/mixup-gpu-check.engine.$$"
trap 'rm -f "$enginelog"' EXIT
node dist/bench/engine.js --device gpu --depth "$depth" --batch "$batch" --steps "$steps" --warmup "$warmup" --experiments erm,mixup,mixup-feature --profile \
  | tee "$enginelog"
ours=$(grep -m1 -oE '^erm .* ([0-9]+) img/s' "$enginelog" | grep -oE '[0-9]+ img/s' | grep -oE '[0-9]+' || true)
rm -f "$enginelog"
echo
if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "== the anchor: the same erm step in PyTorch (scripts/torch-step.py), eager and torch.compile"
  python3 scripts/torch-step.py --depth "$depth" --batch "$batch" --steps "$steps" | while read -r line; do
    theirs=$(grep -oE '[0-9]+ img/s' <<<"$line" | grep -oE '[0-9]+' || true)
    if [[ -n $ours && -n $theirs ]]; then
      echo "$line; static engine / this = $(awk "BEGIN { printf \"%.2f\", $ours / $theirs }")"
    else
      echo "$line"
    fi
  done
else
  echo "== the PyTorch anchor: skipped (no python3 with a CUDA-enabled torch)"
fi
echo
echo "== the same without Dawn's robustness (and validation): erm (MIXUP_DAWN_TOGGLES picks them for a run)"
node dist/bench/engine.js --device gpu --depth "$depth" --batch "$batch" --steps "$steps" --warmup "$warmup" --experiments erm \
  --toggles disable_robustness,skip_validation+disable_robustness --no-model
echo
echo "== host time alone (Dawn's null backend: runs nothing): depth $depth"
node dist/bench/engine.js --device null --depth "$depth" --steps "$nullsteps" --warmup "$warmup" --experiments mixup

if [[ -n $data ]]; then
  echo
  echo "== one real-data epoch: configs/mixup.json on --backend webgpu"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/mixup-gpu-check.XXXXXX")
  trap 'rm -rf "$tmp" "$enginelog"' EXIT
  start=$(date +%s.%N)
  # stdout and stderr through one pipe, so their lines keep the order mixup wrote them in
  "${MIXUP[@]}" "${gpu[@]}" train --config configs/mixup.json --backend webgpu --data-dir "$data" --epochs 1 \
    --set train.keepEpochs='[]' "${epoch[@]}" --out "$tmp/run" 2>&1 |
    grep --line-buffered -E '^(backend|model|train data|Epoch|finished|mixup: )'
  echo "wall time of the command (start-up, data loading, the epoch and its evaluation): $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") s"
fi
