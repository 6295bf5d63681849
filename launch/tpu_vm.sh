#!/usr/bin/env bash
# Run bert-jax on a Cloud TPU VM: one host (v4-8, v6e-8) or a pod slice (v5p-128, ...). Every
# worker of a slice runs the same `bert-jax` command; JAX finds the other workers by itself.
#
# Usage: launch/tpu_vm.sh COMMAND NAME ZONE [OPTIONS] [BERT-JAX-COMMAND [ITS ARGS...]]
#
# Commands:
#   create   create the TPU VM (or queued resource) NAME in ZONE; reuse it when it is there
#   install  copy this checkout (its git files) to every worker and install it with the `tpu`
#            extra into ~/bert-jax/.venv
#   run      start `bert-jax BERT-JAX-COMMAND ARGS...` in the background on the workers, output
#            in ~/bert-jax.log on each; the same command again resumes a training run
#   logs     stream a worker's ~/bert-jax.log until its run ends (Ctrl-C leaves the run going)
#   stop     SIGTERM the run on every worker: a training run saves a checkpoint, then exits
#   delete   delete the TPU VM, or with --queued the queued resource and its VM
#   up       create + install + run + logs in one go; with --delete, delete once the run ended
#
# Options (before BERT-JAX-COMMAND: everything after it goes to bert-jax unchanged). Each
# command takes the options it needs and ignores the others, so an `up` line can be turned into
# the matching `delete` by changing one word.
#   --accelerator=TYPE     create/up: v4-8, v5p-128, v5litepod-16, v6e-8, ... (required)
#   --version=RUNTIME      create/up: TPU software version; by default from TYPE: v2 to v4
#                          tpu-ubuntu2204-base, v5e v2-alpha-tpuv5-lite, v5p v2-alpha-tpuv5,
#                          v6e v2-alpha-tpuv6e
#   --spot                 create/up: Spot capacity: cheaper, can be preempted (then `up` again
#                          with the same line: a training run resumes from its last checkpoint)
#   --queued               create/up/delete: ask through a queued resource NAME whose node is
#                          NAME, and wait until it is ACTIVE (checked every TPU_POLL_SECONDS,
#                          default 30)
#   --best-effort          with --queued: the best-effort tier (a `gcloud alpha` command)
#   --valid-for=DURATION   with --queued: drop the request if not granted within DURATION (6h)
#   --worker=all|N         run: the workers that run the command; by default all of them for
#                          pretrain, finetune and evaluate (they span the slice) and worker 0
#                          for the others (prepare, checkpoints, convert, ... write their
#                          outputs once). logs: the worker to follow (default 0)
#   --delete               up: delete the TPU VM / queued resource once the run has ended
#   --dry-run              print every command that would run, one per line, shell-quoted, and
#                          run none (nothing is asked of gcloud: the TPU is taken as absent);
#                          it counts anywhere on the line, also last
#   -h, --help             this text
#
# Examples:
#   launch/tpu_vm.sh create my-pod us-east5-a --accelerator=v5p-128 --queued --spot
#   launch/tpu_vm.sh install my-pod us-east5-a
#   launch/tpu_vm.sh run my-pod us-east5-a pretrain --config=configs/pretrain.py:base \
#       --workdir=gs://BUCKET/runs/base --config.data.data_dir=gs://BUCKET/shards
#   launch/tpu_vm.sh logs my-pod us-east5-a
#   launch/tpu_vm.sh delete my-pod us-east5-a --queued
#
# gcloud's project applies (CLOUDSDK_CORE_PROJECT or `gcloud config set project`). Everything
# that shapes a run is in its config and --config.* overrides, nothing here.

# The remote commands are in single quotes on purpose: their $ is for the workers' shell.
# shellcheck disable=SC2016
set -euo pipefail

prog=launch/tpu_vm.sh
repo=$(cd "$(dirname "$0")/.." && pwd)
poll_seconds=${TPU_POLL_SECONDS:-30}

# shellcheck source=shell_words.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/shell_words.sh"
note() { echo "$prog: $*" >&2; }

# --- printing and running commands ------------------------------------------------------------

# Run a command, or under --dry-run print it (to fd 3: the script's stdout, even from inside
# a command substitution).
exec 3>&1
x() {
  if ((dry_run)); then
    {
      quote_words "$@"
      echo
    } >&3
  else
    "$@"
  fi
}

# A read-only gcloud query: its output, or failure when the resource is not there. Under
# --dry-run it is printed and fails, as if the resource were absent.
query() {
  if ((dry_run)); then
    x "$@"
    return 1
  fi
  "$@" 2> /dev/null
}

# --- arguments ----------------------------------------------------------------------------------

action="" name="" zone="" accelerator="" version="" valid_for="" worker=""
spot=0 queued=0 best_effort=0 delete=0 dry_run=0
positionals=()
bert_jax_args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --accelerator=*) accelerator=${1#*=} ;;
    --version=*) version=${1#*=} ;;
    --spot) spot=1 ;;
    --queued) queued=1 ;;
    --best-effort) best_effort=1 ;;
    --valid-for=*) valid_for=${1#*=} ;;
    --worker=*) worker=${1#*=} ;;
    --delete) delete=1 ;;
    --dry-run) dry_run=1 ;;
    -*) help_or_unknown_option "$1" ;;
    *)
      if [[ ${#positionals[@]} -lt 3 ]]; then
        positionals+=("$1")
      else
        bert_jax_args=("$@")
        break
      fi
      ;;
  esac
  shift
done

take_dry_run ${bert_jax_args[@]+"${bert_jax_args[@]}"}
bert_jax_args=(${words[@]+"${words[@]}"})

[[ ${#positionals[@]} -eq 3 ]] || die "expected COMMAND NAME ZONE (see --help)"
action=${positionals[0]} name=${positionals[1]} zone=${positionals[2]}
case $action in
  run | up)
    [[ ${#bert_jax_args[@]} -gt 0 ]] \
      || die "$action needs a bert-jax command, e.g. $action $name $zone pretrain --config=..."
    ;;
  create | install | logs | stop | delete)
    [[ ${#bert_jax_args[@]} -eq 0 ]] \
      || die "$action takes no bert-jax command (got ${bert_jax_args[0]})"
    ;;
  *) die "unknown command $action (create, install, run, logs, stop, delete or up)" ;;
esac
[[ -z $worker || $worker == all || $worker =~ ^[0-9]+$ ]] \
  || die "--worker=$worker: expected all or a number"
((!(spot && best_effort))) || die "--spot and --best-effort are two tiers: choose one"
[[ $poll_seconds =~ ^[0-9]+$ ]] \
  || die "TPU_POLL_SECONDS=$poll_seconds: expected a number of seconds"

on_workers() { # WORKERS REMOTE-COMMAND
  x gcloud compute tpus tpu-vm ssh "$name" --zone="$zone" --worker="$1" --command="$2"
}

# --- create -------------------------------------------------------------------------------------

default_version() {
  case $1 in
    v2-* | v3-* | v4-*) echo tpu-ubuntu2204-base ;;
    v5litepod-* | v5e-*) echo v2-alpha-tpuv5-lite ;;
    v5p-*) echo v2-alpha-tpuv5 ;;
    v6e-*) echo v2-alpha-tpuv6e ;;
    *) die "no default TPU software version for --accelerator=$1: give --version=RUNTIME" ;;
  esac
}

create_vm() {
  local state
  if state=$(query gcloud compute tpus tpu-vm describe "$name" --zone="$zone" \
    --format='value(state)'); then
    [[ $state == READY ]] \
      || die "TPU $name in $zone is $state, not READY:" \
        "delete it ($prog delete $name $zone) and create it again"
    note "TPU $name in $zone is READY: reusing it"
    return
  fi
  local tier=()
  ((spot)) && tier=(--spot)
  x gcloud compute tpus tpu-vm create "$name" --zone="$zone" --accelerator-type="$accelerator" \
    --version="$1" ${tier[@]+"${tier[@]}"}
}

queued_state() {
  query gcloud compute tpus queued-resources describe "$name" --zone="$zone" \
    --format='value(state.state)'
}

create_queued() {
  if ! queued_state > /dev/null; then
    local gcloud=(gcloud) extra=()
    ((spot)) && extra+=(--spot)
    ((best_effort)) && gcloud=(gcloud alpha) && extra+=(--best-effort)
    [[ -n $valid_for ]] && extra+=(--valid-until-duration="$valid_for")
    x "${gcloud[@]}" compute tpus queued-resources create "$name" --zone="$zone" --node-id="$name" \
      --accelerator-type="$accelerator" --runtime-version="$1" ${extra[@]+"${extra[@]}"}
  fi
  if ((dry_run)); then
    queued_state || true # the wait below, once
    return
  fi
  local state
  while true; do
    state=$(queued_state) || die "queued resource $name in $zone: gcloud could not describe it"
    case $state in
      ACTIVE) return ;;
      FAILED | SUSPENDING | SUSPENDED | DELETING)
        die "queued resource $name in $zone is $state:" \
          "delete it ($prog delete $name $zone --queued) and create it again"
        ;;
    esac
    note "queued resource $name: ${state:-no state yet}; asking again in ${poll_seconds}s"
    sleep "$poll_seconds"
  done
}

create() {
  [[ -n $accelerator ]] || die "$action needs --accelerator=TYPE (v4-8, v5p-128, v6e-8, ...)"
  local runtime=$version
  [[ -n $runtime ]] || runtime=$(default_version "$accelerator")
  if ((queued)); then create_queued "$runtime"; else create_vm "$runtime"; fi
}

# --- install, run, logs, stop -------------------------------------------------------------------

install() {
  local tmp archive
  if ((dry_run)); then tmp=$(mktemp -d -u); else tmp=$(mktemp -d); fi
  archive=$tmp/bert-jax.tar.gz
  # The files git knows (tracked and not ignored): no virtual environments, data or runs.
  if ((dry_run)); then
    echo "$(quote_words git -C "$repo" ls-files -z --cached --others --exclude-standard) |" \
      "$(quote_words tar -C "$repo" --null -T - -czf "$archive")" >&3
  else
    mkdir -p "$tmp"
    git -C "$repo" ls-files -z --cached --others --exclude-standard \
      | tar -C "$repo" --null -T - -czf "$archive"
  fi
  x gcloud compute tpus tpu-vm scp "$archive" "$name:~/bert-jax.tar.gz" --zone="$zone" --worker=all
  x rm -r "$tmp"
  # The image may lack python3-venv; the venv is kept between installs.
  on_workers all 'mkdir -p ~/bert-jax && tar -xzf ~/bert-jax.tar.gz -C ~/bert-jax'\
' && rm ~/bert-jax.tar.gz && cd ~/bert-jax'\
' && { [ -x .venv/bin/pip ] || python3 -m venv .venv || { sudo apt-get -qq update'\
' && sudo apt-get -qq install -y python3-venv && python3 -m venv .venv; }; }'\
' && .venv/bin/pip install -q -U pip && .venv/bin/pip install -q -e ".[tpu]"'\
' && echo "worker $(hostname): installed"'
}

# The workers of `run`: --worker, else the whole slice for a spanning command, else worker 0.
run_workers() {
  if [[ -n $worker ]]; then
    echo "$worker"
  elif [[ $spanning_commands == *" ${bert_jax_args[0]} "* ]]; then
    echo all
  else
    echo 0
  fi
}

running='[ -f ~/bert-jax.pid ] && kill -0 "$(cat ~/bert-jax.pid)" 2> /dev/null'

run() {
  local args
  args=$(quote_words "${bert_jax_args[@]}")
  # nohup: the run outlives the ssh session. A second run beside a live one is refused.
  on_workers "$(run_workers)" "cd ~/bert-jax || exit 1; if $running; then"\
' echo "worker $(hostname): bert-jax is still running (pid $(cat ~/bert-jax.pid));'\
' stop it first" >&2;'\
" exit 1; fi; nohup .venv/bin/bert-jax $args > ~/bert-jax.log 2>&1 < /dev/null &"\
' echo $! > ~/bert-jax.pid;'\
" echo \"worker \$(hostname): started bert-jax ${bert_jax_args[0]}, output in ~/bert-jax.log\""
}

logs() {
  local follow=${1:-${worker:-0}}
  # tail --pid: the stream ends when the run does.
  on_workers "$follow" 'if [ -f ~/bert-jax.pid ];'\
' then tail -n +1 -F --pid="$(cat ~/bert-jax.pid)" ~/bert-jax.log;'\
' else echo "worker $(hostname): no run was started here" >&2; exit 1; fi'
}

stop() {
  on_workers all "if $running;"\
' then kill -TERM "$(cat ~/bert-jax.pid)" && echo "worker $(hostname): sent SIGTERM to bert-jax";'\
' else echo "worker $(hostname): no bert-jax running"; fi'
}

delete() {
  if ((queued)); then
    # --force: its TPU VM goes too.
    x gcloud compute tpus queued-resources delete "$name" --zone="$zone" --force --quiet
  else
    x gcloud compute tpus tpu-vm delete "$name" --zone="$zone" --quiet
  fi
}

up() {
  create
  install
  run
  local follow=0
  [[ -n $worker && $worker != all ]] && follow=$worker
  note "following worker $follow's log; Ctrl-C stops following, not the run" \
    "(later: $prog logs $name $zone, $prog stop $name $zone)"
  logs "$follow"
  if ((delete)); then delete; fi
}

case $action in
  create) create ;;
  install) install ;;
  run) run ;;
  logs) logs ;;
  stop) stop ;;
  delete) delete ;;
  up) up ;;
esac
