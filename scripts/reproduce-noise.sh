#!/usr/bin/env bash
# Reproduce the label-noise experiment of the mixup paper (Zhang et al. 2017, §3.4, Table 2) on this
# network: ERM and input mixup with α 1, 8 and 32, each trained 200 epochs with 20 %, 50 % and 80 %
# of the training labels replaced by random ones (configs/noise/{erm,mixup-a1,mixup-a8,mixup-a32}-
# {20,50,80}.json), then `mixup report` prints the noise-by-method table of best and last test
# accuracy and the memorisation of the corrupted labels, and draws the curves.
#
# Usage: scripts/reproduce-noise.sh [options]
#   --gpus 0,1,...   run experiments side by side, one per GPU, queueing the rest; each run gets
#                    CUDA_VISIBLE_DEVICES=G and `mixup train --gpu G` (webgpu: Vulkan ignores
#                    CUDA_VISIBLE_DEVICES); without it the runs go one after the other
#   --gpu G          pass --gpu G to every run (one GPU)
#   --jobs N         run N experiments side by side without assigning GPUs
#   --seeds N        repeat each experiment with seeds 0..N-1 (default 1); the seed also picks
#                    which labels are corrupted (the same samples for every method of a seed)
#   --set key=value  config override for every run (repeatable), e.g. a short trial in its own
#                    --runs directory: --runs runs/trial --set train.epochs=1 --set data.limit=2000
#                    --set model.depth=8
#   --data-dir DIR   CIFAR-10 directory, passed to every new run
#   --runs DIR       where the run directories go (default runs/noise): DIR/<experiment>-s<seed>
#   --only LIST      only these experiments, e.g. --only erm-80,mixup-a32-80
#   --plot FILE      where the report draws the curves (default DIR/curves.svg; .png works too; redrawn, replacing it, on every call)
#   --force          train again from scratch (replacing it) every run in DIR whose config.json
#                    differs from what this call would train; without it such runs stop the script
#   --dry-run        print the commands instead of running them
#   --no-report      do not build the table at the end
#   --report-only    only build the table from the run directories there are
#   --task I         run only the I-th run of the list (0-based, seed-major)
#
# Finished runs are skipped, started ones resumed (`mixup train --resume`), only when their
# config.json is what this call would train (see reproduce-table.sh and --force). With --gpus or --jobs each run's output goes to DIR/logs/<run>.log. Ctrl-C (or
# SIGTERM) asks the running trainings to checkpoint and stop; run the same command again to continue.
# MIXUP_CMD replaces the `mixup` command (default: node <repo>/bin/mixup).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPRO_NAME=reproduce-noise.sh
REPRO_EXPERIMENTS=()
for p in 20 50 80; do REPRO_EXPERIMENTS+=("erm-$p" "mixup-a1-$p" "mixup-a8-$p" "mixup-a32-$p"); done
REPRO_CONFIGS=$ROOT/configs/noise
REPRO_RUNS=runs/noise
REPRO_REPORT_ARGS=()
reproduce_main "$@"
