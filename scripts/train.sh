#!/usr/bin/env bash
# Train the default main job, as the reference's train.sh does: input mixup (α 0.2, mix_rate 0.7)
# on the pre-activation ResNet-50, 300 epochs (configs/mixup.json), into runs/mixup.
#
# Usage: scripts/train.sh [mixup train options]
#   scripts/train.sh --data-dir data/cifar10
#   scripts/train.sh --data-dir data/cifar10 --out runs/mixup-s1 --seed 1
#   scripts/train.sh --config configs/quick.json --data-dir data/cifar10   (another config)
# A run directory that already holds a started run is resumed (mixup train --resume) instead.
# MIXUP_CMD replaces the `mixup` command (default: node <repo>/bin/mixup).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

config=$ROOT/configs/mixup.json
out=runs/mixup
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -c | --config) config=$2; shift 2 ;;
    --config=*) config=${1#*=}; shift ;;
    --out) out=$2; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

if [[ -f $out/config.json ]]; then
  echo "train.sh: $out holds a started run: resuming it (another run: --out DIR)" >&2
  exec "${MIXUP[@]}" train --resume "$out"
fi
exec "${MIXUP[@]}" train --config "$config" --out "$out" "${args[@]}"
