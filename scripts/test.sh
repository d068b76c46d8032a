#!/usr/bin/env bash
# Test the newest checkpoint of a run on the validation set (the 10,000 CIFAR-10 test images),
# as the reference's test.sh does: top-1 accuracy, mean loss, per-class accuracy.
#
# Usage: scripts/test.sh [RUN_DIR] [mixup test options]     (RUN_DIR default: runs/mixup)
#   scripts/test.sh runs/mixup-200-s0
#   scripts/test.sh runs/mixup --epoch 100 --json
# MIXUP_CMD replaces the `mixup` command (default: node <repo>/bin/mixup).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

run=runs/mixup
if [[ $# -gt 0 && $1 != -* ]]; then
  run=$1
  shift
fi
exec "${MIXUP[@]}" test "$run" "$@"
