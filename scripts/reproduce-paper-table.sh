#!/usr/bin/env bash
# Reproduce the CIFAR-10 figures of the mixup paper's Table 1 (Zhang et al. 2018, arXiv:1710.09412)
# for the two networks this project builds, with the recipe of its authors' code
# (facebookresearch/mixup-cifar10 train.py): ERM and input mixup (α 1) for PreAct ResNet-18 and
# WRN-28-10, 200 epochs each (configs/paper/{erm,mixup}-{preact18,wrn28-10}.json; checkpoints of
# epochs 100, 150 and 200 are kept), then `mixup report --compare-reference` prints the paper's error
# rates, as accuracy, beside the measured ones. These are not the MXNet reference's figures
# (scripts/reproduce-table.sh): other networks, other recipe, 94–97 % instead of 86–92 %.
#
# Usage: scripts/reproduce-paper-table.sh [options]
#   the options of scripts/reproduce-table.sh: --gpus, --gpu, --jobs, --seeds N, --set key=value,
#   --data-dir DIR, --runs DIR (default runs/paper: DIR/<config>-s<seed>), --only LIST (of
#   erm-preact18, mixup-preact18, erm-wrn28-10, mixup-wrn28-10), --plot, --force, --dry-run,
#   --no-report, --report-only, --task I (scripts/slurm/reproduce-paper-table.sbatch)
#
# Finished runs are skipped, started ones resumed (`mixup train --resume`), only when their
# config.json is what this call would train (see reproduce-table.sh and --force). With --gpus or
# --jobs each run's output goes to DIR/logs/<run>.log. Ctrl-C (or SIGTERM) asks the running trainings
# to checkpoint and stop; run the same command again to continue.
# MIXUP_CMD replaces the `mixup` command (default: node <repo>/bin/mixup).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPRO_NAME=reproduce-paper-table.sh
REPRO_EXPERIMENTS=(erm-preact18 mixup-preact18 erm-wrn28-10 mixup-wrn28-10)
REPRO_CONFIGS=$ROOT/configs/paper
REPRO_RUNS=runs/paper
REPRO_REPORT_ARGS=(--compare-reference)
reproduce_main "$@"
