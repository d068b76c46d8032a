#!/usr/bin/env bash
# Reproduce the CIFAR-10 results table of the MXNet reference (unsky/mixup, forked as
# hdjsjyl/mixup): ERM, input mixup and feature-map mixup, one 300-epoch run each
# (configs/{erm,mixup,mixup-feature}-300.json), as the reference did: its 90- and 200-epoch figures
# are checkpoints of its 300-epoch runs. The runs keep the checkpoints of epochs 90, 200 and 300
# (train.keepEpochs), and `mixup report --compare-reference` takes the 90/200/300 rows from each
# run's curves.csv. The *-90 and *-200 configs (exactly that many epochs) can be added with --only.
#
# Usage: scripts/reproduce-table.sh [options]
#   --gpus 0,1,...   run experiments side by side, one per GPU, queueing the rest; each run gets
#                    CUDA_VISIBLE_DEVICES=G and `mixup train --gpu G` (webgpu: Vulkan ignores
#                    CUDA_VISIBLE_DEVICES); without it the runs go one after the other
#   --gpu G          pass --gpu G to every run (one GPU; used by scripts/slurm/reproduce-table.sbatch)
#   --jobs N         run N experiments side by side without assigning GPUs (e.g. on a CPU
#                    machine with several cores: each training uses about one core)
#   --seeds N        repeat each experiment with seeds 0..N-1 (default 1)
#   --set key=value  config override for every run (repeatable), e.g. a short trial in its own
#                    --runs directory: --runs runs/trial --set train.epochs=1 --set data.limit=2000
#                    --set model.depth=8
#   --data-dir DIR   CIFAR-10 directory, passed to every new run
#   --runs DIR       where the run directories go (default runs): DIR/<experiment>-s<seed>
#   --only LIST      only these configs, e.g. --only erm-300,mixup-300; the *-90 and *-200
#                    configs are accepted too (separate runs of exactly that length)
#   --plot FILE      where the report draws the curves (default DIR/curves.svg; .png works too; redrawn, replacing it, on every call)
#   --force          train again from scratch (replacing it) every run in DIR whose config.json
#                    differs from what this call would train; without it such runs stop the script
#   --dry-run        print the commands instead of running them
#   --no-report      do not build the table at the end
#   --report-only    only build the table from the run directories there are
#   --task I         run only the I-th run of the list (0-based, seed-major: all experiments of
#                    seed 0 first); used by scripts/slurm/reproduce-table.sbatch
#
# A run whose status.json says "finished" is skipped; a run directory holding a started run
# (config.json) is resumed with `mixup train --resume`, not restarted; both only when the run's
# config.json is what this call would train (config, --set, --data-dir; `mixup train --check-run`).
# A run trained with another config (a short trial's --set train.epochs=1, say) stops the script
# before anything is trained, with one line per run naming the keys that differ: train it again
# with --force, or give another setup its own --runs directory.
# With --gpus or --jobs each run's output goes to DIR/logs/<run>.log. Ctrl-C (or SIGTERM) asks the running
# trainings to checkpoint and stop; run the same command again to continue.
# MIXUP_CMD replaces the `mixup` command (default: node <repo>/bin/mixup).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPRO_NAME=reproduce-table.sh
REPRO_EXPERIMENTS=(erm-90 erm-200 erm-300 mixup-90 mixup-200 mixup-300 mixup-feature-90 mixup-feature-200 mixup-feature-300)
# shellcheck disable=SC2034  # used by reproduce_main in lib.sh
REPRO_DEFAULT=(erm-300 mixup-300 mixup-feature-300)
REPRO_CONFIGS=$ROOT/configs
REPRO_RUNS=runs
REPRO_REPORT_ARGS=(--compare-reference)
reproduce_main "$@"
