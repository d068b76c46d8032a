# shellcheck shell=bash
# Sourced (not run) by the scripts next to it, after their own `set -euo pipefail`. Sets:
#   ROOT   the repository root (the parent of this scripts/ directory)
#   MIXUP  the `mixup` command as an array: $MIXUP_CMD split on whitespace when it is set,
#          else node "$ROOT/bin/mixup"
# and defines reproduce_main (with its helpers die and usage), the body of reproduce-table.sh and
# reproduce-noise.sh (below).
# scripts/slurm/reproduce-table.sbatch does not source it: Slurm runs a copy of the batch
# script from its spool directory, so that script finds the root from the submit directory.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034  # MIXUP is used by the sourcing script
if [[ -n ${MIXUP_CMD:-} ]]; then
  read -r -a MIXUP <<<"$MIXUP_CMD"
else
  MIXUP=(node "$ROOT/bin/mixup")
fi

# ---------------------------------------------------------------- reproduce_main
# Trains a list of experiments (one run per experiment and seed, queued over GPUs or job slots; a
# finished run is skipped and a started one resumed only when its config.json is what this call
# would train, see --force) and then runs `mixup report` on them. The calling
# script documents the options in its header comment (printed by --help) and sets, before calling
# `reproduce_main "$@"`:
#   REPRO_NAME         its name, for messages (reproduce-table.sh)
#   REPRO_EXPERIMENTS  the experiments --only may name, in table order: config names under REPRO_CONFIGS
#   REPRO_DEFAULT      optional: the ones trained without --only (default: all of REPRO_EXPERIMENTS)
#   REPRO_CONFIGS      the directory of their config files ($ROOT/configs)
#   REPRO_RUNS         the default --runs directory (runs)
#   REPRO_REPORT_ARGS  extra `mixup report` arguments (e.g. --compare-reference)

die() {
  echo "$REPRO_NAME: error: $*" >&2
  exit 2
}

usage() {
  sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[-1]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

reproduce_main() {
  gpus=()
  jobs=""
  seeds=1
  dry_run=0
  sets=()
  data_dir=""
  runs=$REPRO_RUNS
  only=""
  plot=""
  report=1
  report_only=0
  task=""
  gpu_one=""
  force=0

  need() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }
  while [[ $# -gt 0 ]]; do
    case $1 in
      --gpus) need "$@"; IFS=, read -r -a gpus <<<"$2"; shift 2 ;;
      --gpus=*) IFS=, read -r -a gpus <<<"${1#*=}"; shift ;;
      --gpu) need "$@"; gpu_one=$2; shift 2 ;;
      --gpu=*) gpu_one=${1#*=}; shift ;;
      --jobs) need "$@"; jobs=$2; shift 2 ;;
      --jobs=*) jobs=${1#*=}; shift ;;
      --seeds) need "$@"; seeds=$2; shift 2 ;;
      --seeds=*) seeds=${1#*=}; shift ;;
      --set) need "$@"; sets+=(--set "$2"); shift 2 ;;
      --set=*) sets+=(--set "${1#*=}"); shift ;;
      --data-dir) need "$@"; data_dir=$2; shift 2 ;;
      --data-dir=*) data_dir=${1#*=}; shift ;;
      --runs) need "$@"; runs=$2; shift 2 ;;
      --runs=*) runs=${1#*=}; shift ;;
      --only) need "$@"; only=$2; shift 2 ;;
      --only=*) only=${1#*=}; shift ;;
      --plot) need "$@"; plot=$2; shift 2 ;;
      --plot=*) plot=${1#*=}; shift ;;
      --task) need "$@"; task=$2; shift 2 ;;
      --task=*) task=${1#*=}; shift ;;
      --dry-run) dry_run=1; shift ;;
      --force) force=1; shift ;;
      --no-report) report=0; shift ;;
      --report-only) report_only=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option '$1' (see --help)" ;;
    esac
  done

  [[ $seeds =~ ^[1-9][0-9]*$ ]] || die "--seeds $seeds: expected a whole number >= 1"
  # Parallel slots: GPU ids (CUDA_VISIBLE_DEVICES is set) or, with --jobs, plain slot numbers.
  use_cuda=1
  if [[ -n $jobs ]]; then
    [[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs $jobs: expected a whole number >= 1"
    ((${#gpus[@]} == 0)) || die "--jobs and --gpus exclude each other (--gpus runs one experiment per GPU)"
    use_cuda=0
    for ((j = 1; j <= jobs; j++)); do gpus+=("$j"); done
  fi
  for g in "${gpus[@]}"; do
    [[ -n $g && $g != *[[:space:]]* ]] || die "--gpus: expected a comma-separated list of GPU ids, e.g. 0,1"
  done
  if [[ -n $gpu_one ]]; then
    [[ $gpu_one =~ ^[0-9]+$ ]] || die "--gpu $gpu_one: expected a GPU index (0, 1, ...)"
    ((${#gpus[@]} == 0)) || die "--gpu and --gpus/--jobs exclude each other"
  fi
  for ((i = 0; i < ${#sets[@]}; i += 2)); do
    [[ ${sets[i + 1]} == ?*=* ]] || die "--set ${sets[i + 1]}: expected key.path=value, e.g. --set train.epochs=10"
  done

  experiments=()
  if [[ -n $only ]]; then
    IFS=, read -r -a wanted <<<"$only"
    for w in "${wanted[@]}"; do
      [[ " ${REPRO_EXPERIMENTS[*]} " == *" $w "* ]] || die "--only $w: expected some of ${REPRO_EXPERIMENTS[*]}"
    done
    for e in "${REPRO_EXPERIMENTS[@]}"; do
      [[ ",$only," == *",$e,"* ]] && experiments+=("$e")
    done
  elif [[ -n ${REPRO_DEFAULT+set} ]]; then
    experiments=("${REPRO_DEFAULT[@]}")
  else
    experiments=("${REPRO_EXPERIMENTS[@]}")
  fi
  for e in "${experiments[@]}"; do
    [[ -f $REPRO_CONFIGS/$e.json ]] || die "$REPRO_CONFIGS/$e.json: missing"
  done

  # The runs: seed-major, so that a partial sweep has whole tables first.
  names=()
  run_seeds=()
  for ((s = 0; s < seeds; s++)); do
    for e in "${experiments[@]}"; do
      names+=("$e")
      run_seeds+=("$s")
    done
  done
  if [[ -n $task ]]; then
    [[ $task =~ ^[0-9]+$ && $task -lt ${#names[@]} ]] || die "--task $task: expected 0..$((${#names[@]} - 1)) (${#experiments[@]} experiments x $seeds seeds)"
    names=("${names[task]}")
    run_seeds=("${run_seeds[task]}")
    report=0
  fi
  [[ -z $plot ]] && plot=$runs/curves.svg

  run_dir() { echo "$runs/$1-s$2"; }

  # What to do with run i: skip (finished), resume (started) or new.
  state_of() {
    local dir=$1
    if [[ -f $dir/status.json ]] && grep -Eq '"status"[[:space:]]*:[[:space:]]*"finished"' "$dir/status.json"; then
      echo skip
    elif [[ -f $dir/config.json ]]; then
      echo resume
    else
      echo new
    fi
  }

  # Fills the array `cmd` with the command that starts run i afresh (what this call trains).
  new_cmd() {
    local i=$1
    cmd=("${MIXUP[@]}" train --config "$REPRO_CONFIGS/${names[i]}.json" --out "$(run_dir "${names[i]}" "${run_seeds[i]}")" --seed "${run_seeds[i]}")
    [[ -n $data_dir ]] && cmd+=(--data-dir "$data_dir")
    cmd+=("${sets[@]}")
  }

  # Fills the array `cmd` with the training command of run i: resume a started run, start a new
  # one, or (--force) start again over a run trained with another config.
  build_cmd() {
    local i=$1 dir
    dir=$(run_dir "${names[i]}" "${run_seeds[i]}")
    if [[ -z ${redo[$i]:-} && $(state_of "$dir") == resume ]]; then
      cmd=("${MIXUP[@]}" train --resume "$dir")
    else
      new_cmd "$i"
      [[ -z ${redo[$i]:-} ]] || cmd+=(--overwrite)
    fi
    [[ -z $gpu_one ]] || cmd+=(--gpu "$gpu_one")
  }

  # A finished or started run is reused only when it is what this call would train: `mixup train
  # --check-run` compares its config.json with the config this call resolves (exit 4 and one line
  # naming the keys when they differ). Without --force, any difference stops the script before it
  # trains anything; with --force those runs are trained again from scratch (--overwrite).
  declare -gA redo=()
  if ((!report_only)); then
    differing=()
    for ((i = 0; i < ${#names[@]}; i++)); do
      dir=$(run_dir "${names[i]}" "${run_seeds[i]}")
      [[ $(state_of "$dir") == new || ! -f $dir/config.json ]] && continue
      new_cmd "$i"
      rc=0
      line=$("${cmd[@]}" --check-run) || rc=$?
      case $rc in
        0) ;;
        4)
          differing+=("$line")
          redo[$i]=1
          ;;
        *) die "cannot compare $dir with this call's config (mixup train --check-run: exit $rc, see above)" ;;
      esac
    done
    if ((${#differing[@]} > 0)); then
      if ((!force)); then
        for l in "${differing[@]}"; do echo "$REPRO_NAME: $l" >&2; done
        die "${#differing[@]} run(s) in $runs were trained with another config than this call would train; train them again from scratch with --force (replaces them), or use another --runs directory"
      fi
      for l in "${differing[@]}"; do echo "$REPRO_NAME: $l; --force: training it again from scratch" >&2; done
    fi
  fi

  quoted() {
    local out
    printf -v out '%q ' "$@"
    echo "${out% }"
  }

  report_cmd=("${MIXUP[@]}" report)
  for ((i = 0; i < ${#names[@]}; i++)); do report_cmd+=("$(run_dir "${names[i]}" "${run_seeds[i]}")"); done
  report_cmd+=("${REPRO_REPORT_ARGS[@]}" --plot "$plot" --force) # the script redraws its own plot each time

  # ---------------------------------------------------------------- dry run
  if ((dry_run)); then
    if ((!report_only)); then
      k=0
      for ((i = 0; i < ${#names[@]}; i++)); do
        dir=$(run_dir "${names[i]}" "${run_seeds[i]}")
        if [[ -z ${redo[$i]:-} && $(state_of "$dir") == skip ]]; then
          echo "# skip $dir: finished"
          continue
        fi
        build_cmd "$i"
        prefix=""
        if ((${#gpus[@]} > 0 && use_cuda)); then
          # webgpu (Vulkan) ignores CUDA_VISIBLE_DEVICES: the GPU goes to mixup as --gpu too.
          prefix="CUDA_VISIBLE_DEVICES=${gpus[k % ${#gpus[@]}]} "
          cmd+=(--gpu "${gpus[k % ${#gpus[@]}]}")
        fi
        k=$((k + 1))
        echo "$prefix$(quoted "${cmd[@]}")"
      done
    fi
    ((report)) && echo "$(quoted "${report_cmd[@]}") | tee $(quoted "$runs/table.md")"
    exit 0
  fi

  # ---------------------------------------------------------------- training
  failed=()
  declare -gA pid_of_slot=() name_of_pid=()
  running_pids=()

  # shellcheck disable=SC2317  # invoked by the trap
  on_signal() {
    local code=$1
    trap '' INT TERM
    echo "$REPRO_NAME: stopping: asking the running trainings to checkpoint and exit" >&2
    for p in "${running_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${running_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    echo "$REPRO_NAME: stopped; run the same command again to resume" >&2
    exit "$code"
  }
  trap 'on_signal 130' INT
  trap 'on_signal 143' TERM

  forget_pid() {
    local p=$1 keep=() q
    for q in "${running_pids[@]}"; do [[ $q == "$p" ]] || keep+=("$q"); done
    running_pids=("${keep[@]}")
  }

  # Waits for pid $1 and records a failure.
  reap() {
    local p=$1 rc=0
    wait "$p" || rc=$?
    forget_pid "$p"
    if ((rc != 0)); then
      failed+=("${name_of_pid[$p]} (exit $rc)")
      echo "==> ${name_of_pid[$p]} failed with exit code $rc" >&2
    else
      echo "==> ${name_of_pid[$p]} done"
    fi
  }

  if ((!report_only)); then
    total=${#names[@]}
    if ((${#gpus[@]} > 0)); then mkdir -p "$runs/logs"; fi
    for ((i = 0; i < total; i++)); do
      name="${names[i]}-s${run_seeds[i]}"
      dir=$(run_dir "${names[i]}" "${run_seeds[i]}")
      if [[ -z ${redo[$i]:-} && $(state_of "$dir") == skip ]]; then
        echo "==> [$((i + 1))/$total] $name: finished, skipped"
        continue
      fi
      build_cmd "$i"
      mkdir -p "$runs"
      if ((${#gpus[@]} == 0)); then
        echo "==> [$((i + 1))/$total] $name: $(quoted "${cmd[@]}")"
        # in the background and waited for, so that Ctrl-C / SIGTERM reach the trap at once
        "${cmd[@]}" &
        pid=$!
        running_pids+=("$pid")
        name_of_pid[$pid]=$name
        reap "$pid"
        continue
      fi
      # a free GPU: wait until one of the running runs ends
      slot=""
      while [[ -z $slot ]]; do
        for g in "${gpus[@]}"; do
          p=${pid_of_slot[$g]:-}
          if [[ -z $p ]]; then
            slot=$g
            break
          fi
          if ! kill -0 "$p" 2>/dev/null; then
            reap "$p"
            pid_of_slot[$g]=""
            slot=$g
            break
          fi
        done
        [[ -z $slot ]] && sleep "${MIXUP_POLL_SECONDS:-2}"
      done
      log=$runs/logs/$name.log
      if ((use_cuda)); then
        cmd+=(--gpu "$slot")
        echo "==> [$((i + 1))/$total] $name on GPU $slot (log: $log): CUDA_VISIBLE_DEVICES=$slot $(quoted "${cmd[@]}")"
        CUDA_VISIBLE_DEVICES=$slot "${cmd[@]}" >>"$log" 2>&1 &
      else
        echo "==> [$((i + 1))/$total] $name in slot $slot (log: $log): $(quoted "${cmd[@]}")"
        "${cmd[@]}" >>"$log" 2>&1 &
      fi
      pid=$!
      running_pids+=("$pid")
      name_of_pid[$pid]=$name
      pid_of_slot[$slot]=$pid
    done
    for p in "${running_pids[@]}"; do reap "$p"; done
  fi

  # ---------------------------------------------------------------- table
  rc=0
  if ((report)); then
    echo "==> $(quoted "${report_cmd[@]}")"
    "${report_cmd[@]}" | tee "$runs/table.md" || rc=$?
  fi
  if ((${#failed[@]} > 0)); then
    echo "$REPRO_NAME: ${#failed[@]} run(s) failed: ${failed[*]}; see their output (or $runs/logs/) and run the same command again to resume" >&2
    exit 1
  fi
  exit "$rc"
}
