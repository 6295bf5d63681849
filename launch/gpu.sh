#!/usr/bin/env bash
# Run bert-jax on GPUs: one process per machine drives all of that machine's GPUs.
#
# Usage: launch/gpu.sh [OPTIONS] BERT-JAX-COMMAND [ITS ARGS...]
#
# One machine, all its GPUs:
#   launch/gpu.sh pretrain --config=configs/pretrain.py:base --workdir=/runs/base \
#       --config.data.data_dir=/data/shards
# Several machines: the same line on each, with the coordinator (machine 0's host:port), the
# number of machines and this machine's rank:
#   launch/gpu.sh --coordinator=node0:12355 --num_nodes=2 --node_rank=1 pretrain --config=...
# Under SLURM with one task per node, the three come from SLURM_NTASKS, SLURM_PROCID and the
# first host of SLURM_JOB_NODELIST (`scontrol show hostnames`), port COORDINATOR_PORT (12355):
#   srun --nodes=2 --ntasks-per-node=1 launch/gpu.sh pretrain --config=...
# or let the script call srun (from a login node, or inside salloc / an sbatch script):
#   launch/gpu.sh --slurm --nodes=2 --gpus_per_node=8 --srun_arg=--partition=gpu pretrain ...
#
# Options (before BERT-JAX-COMMAND: everything after it goes to bert-jax unchanged):
#   --coordinator=HOST:PORT  machine 0's address (or the variable COORDINATOR)
#   --num_nodes=N            machines in the run (or NUM_NODES)
#   --node_rank=I            this machine's rank, 0 to N-1 (or NODE_RANK)
#   --slurm                  run this script under srun, one task per node, which then finds
#                            the three above in SLURM's variables
#   --nodes=N                with --slurm: how many nodes (default 1)
#   --gpus_per_node=G        with --slurm: srun --gpus-per-node=G
#   --srun_arg=ARG           with --slurm: one more srun argument (repeatable), e.g.
#                            --srun_arg=--partition=gpu --srun_arg=--time=24:00:00
#   --dry-run                print the command that would run, shell-quoted with its
#                            environment, and run nothing (under SLURM, scontrol is still
#                            asked for the coordinator's host name); it counts anywhere on
#                            the line, also last
#   -h, --help               this text
#
# The processes join through JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID
# (bert_jax/distributed.py), which every command reads. pretrain, finetune and evaluate span all
# machines; the other commands (prepare, checkpoints, convert, ...) write their outputs once, so
# on several machines only rank 0 runs them and the others exit at once.
# JAX owns the GPUs. TensorFlow, used for input only, must not take their memory: on x86-64 it
# is the CPU build, and the pretraining input pipeline hides the GPUs from it
# (bert_jax/data/shard_reader.py, tf.config.set_visible_devices).
# Everything that shapes a run is in its config and --config.* overrides, nothing here.
set -euo pipefail

prog=launch/gpu.sh
here=$(cd "$(dirname "$0")" && pwd)
port=${COORDINATOR_PORT:-12355}

# shellcheck source=shell_words.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/shell_words.sh"

# Replace this script with the command, or under --dry-run print it.
run() {
  if ((dry_run)); then
    quote_words "$@"
    echo
    exit 0
  fi
  exec "$@"
}

# --- arguments ----------------------------------------------------------------------------------

coordinator=${COORDINATOR:-} num_nodes=${NUM_NODES:-} node_rank=${NODE_RANK:-}
slurm=0 nodes=1 gpus_per_node="" dry_run=0
srun_args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --coordinator=*) coordinator=${1#*=} ;;
    --num_nodes=*) num_nodes=${1#*=} ;;
    --node_rank=*) node_rank=${1#*=} ;;
    --slurm) slurm=1 ;;
    --nodes=*) nodes=${1#*=} ;;
    --gpus_per_node=*) gpus_per_node=${1#*=} ;;
    --srun_arg=*) srun_args+=("${1#*=}") ;;
    --dry-run) dry_run=1 ;;
    -*) help_or_unknown_option "$1" ;;
    *) break ;;
  esac
  shift
done
take_dry_run "$@"
set -- ${words[@]+"${words[@]}"}
[[ $# -gt 0 ]] || die "expected a bert-jax command, e.g. $prog pretrain --config=... (see --help)"
command=$1

positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1=$2: expected a positive number"; }

if ((slurm)); then
  positive --nodes "$nodes"
  if [[ -n $gpus_per_node ]]; then
    positive --gpus_per_node "$gpus_per_node"
    srun_args=(--gpus-per-node="$gpus_per_node" ${srun_args[@]+"${srun_args[@]}"})
  fi
  # Each task runs this script again; it finds its rank and the coordinator in SLURM's variables.
  # --kill-on-bad-exit: one failed node ends the others instead of leaving them waiting.
  run srun --nodes="$nodes" --ntasks-per-node=1 --kill-on-bad-exit=1 \
    ${srun_args[@]+"${srun_args[@]}"} "$here/gpu.sh" "$@"
fi

if [[ -z $num_nodes && ${SLURM_NTASKS:-1} -gt 1 && -n ${SLURM_PROCID:-} ]]; then
  num_nodes=$SLURM_NTASKS
  node_rank=$SLURM_PROCID
  [[ -n ${SLURM_JOB_NODELIST:-} ]] || die "SLURM_NTASKS=$SLURM_NTASKS but no SLURM_JOB_NODELIST"
  hosts=$(scontrol show hostnames "$SLURM_JOB_NODELIST") \
    || die "scontrol show hostnames $SLURM_JOB_NODELIST failed"
  first_host=${hosts%%$'\n'*}
  [[ -n $first_host ]] || die "scontrol show hostnames $SLURM_JOB_NODELIST named no host"
  coordinator=$first_host:$port
fi

bert_jax=(bert-jax)
command -v bert-jax > /dev/null || bert_jax=(python3 -m bert_jax)

if [[ -z $num_nodes || $num_nodes == 1 ]]; then
  run "${bert_jax[@]}" "$@"
fi

positive --num_nodes "$num_nodes"
[[ -n $coordinator ]] \
  || die "--num_nodes=$num_nodes needs --coordinator=HOST:PORT (machine 0's address)"
[[ $coordinator =~ ^[^:]+:[0-9]+$ ]] || die "--coordinator=$coordinator: expected HOST:PORT"
[[ -n $node_rank ]] \
  || die "--num_nodes=$num_nodes needs --node_rank (this machine's rank, 0 to $((num_nodes - 1)))"
[[ $node_rank =~ ^[0-9]+$ && $node_rank -lt $num_nodes ]] \
  || die "--node_rank=$node_rank: expected 0 to $((num_nodes - 1))"

if [[ $spanning_commands != *" $command "* ]]; then
  if [[ $node_rank == 0 ]]; then run "${bert_jax[@]}" "$@"; fi
  echo "$prog: rank $node_rank: bert-jax $command runs on rank 0 only" >&2
  exit 0
fi
run env JAX_COORDINATOR_ADDRESS="$coordinator" JAX_NUM_PROCESSES="$num_nodes" \
  JAX_PROCESS_ID="$node_rank" "${bert_jax[@]}" "$@"
