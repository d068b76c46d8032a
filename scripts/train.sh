#!/usr/bin/env bash
# Train the default main job, as the reference's train.sh does: input mixup (α 0.2, mix_rate 0.7)
# on the pre-activation ResNet-50, 300 epochs (configs/mixup.json), into runs/mixup.
#
# Usage: scripts/train.sh [mixup train options]
#   scripts/train.sh --data-dir data/cifar10
#   scripts/train.sh --data-dir data/cifar10 --out runs/mixup-s1 --seed 1
#   scripts/train.sh --config configs/quick.json --data-dir data/cifar10   (another config)
# A run directory that already holds a started run of the same config (config file, options; see
# `mixup train --check-run`) is resumed (mixup train --resume) instead; one of another config is
# refused (exit 2) with the keys that differ. --overwrite starts afresh regardless.
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

if [[ -f $out/config.json && " ${args[*]} " != *" --overwrite "* ]]; then
  rc=0
  line=$("${MIXUP[@]}" train --config "$config" --out "$out" "${args[@]}" --check-run) || rc=$?
  case $rc in
    0)
      echo "train.sh: $out holds a started run of this config: resuming it (another run: --out DIR)" >&2
      exec "${MIXUP[@]}" train --resume "$out"
      ;;
    4)
      echo "train.sh: $line" >&2
      echo "train.sh: error: $out holds a run of another config; resume that run with: mixup train --resume $out; or train this one into another --out DIR (or replace it: --overwrite)" >&2
      exit 2
      ;;
    *) exit "$rc" ;;
  esac
fi
exec "${MIXUP[@]}" train --config "$config" --out "$out" "${args[@]}"
