# shellcheck shell=bash
# Sourced (not run) by the scripts next to it, after their own `set -euo pipefail`. Sets:
#   ROOT   the repository root (the parent of this scripts/ directory)
#   MIXUP  the `mixup` command as an array: $MIXUP_CMD split on whitespace when it is set,
#          else node "$ROOT/bin/mixup"
# scripts/slurm/reproduce-table.sbatch does not source it: Slurm runs a copy of the batch
# script from its spool directory, so that script finds the root from the submit directory.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034  # MIXUP is used by the sourcing script
if [[ -n ${MIXUP_CMD:-} ]]; then
  read -r -a MIXUP <<<"$MIXUP_CMD"
else
  MIXUP=(node "$ROOT/bin/mixup")
fi
