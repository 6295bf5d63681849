#!/usr/bin/env bash
# Pretraining on GPUs. One process drives all GPUs of its machine.
#
# One machine:
#   launch/gpu.sh --config=configs/pretrain.py:base --workdir=/runs/base \
#       --config.data.data_dir=/data/shards [--config.train.batch_size=... --config.mesh.fsdp=...]
# Several machines, the same command on each, with the coordinator (process 0's host:port),
# the number of machines and this machine's index, given as options before the run's flags:
#   launch/gpu.sh --coordinator=node0:12355 --num_nodes=2 --node_rank=1 --config=... --workdir=...
# Under SLURM (one task per node), they come from the SLURM environment:
#   srun --nodes=2 --ntasks-per-node=1 launch/gpu.sh --config=... --workdir=...
#
# Everything that shapes the run is in the config and its --config.* overrides; nothing here.
set -euo pipefail

coordinator=${COORDINATOR:-} num_nodes=${NUM_NODES:-} node_rank=${NODE_RANK:-}
port=${COORDINATOR_PORT:-12355}
while [[ $# -gt 0 ]]; do
  case $1 in
    --coordinator=*) coordinator=${1#*=} ;;
    --num_nodes=*) num_nodes=${1#*=} ;;
    --node_rank=*) node_rank=${1#*=} ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
  shift
done

if [[ -z $num_nodes && ${SLURM_NTASKS:-1} -gt 1 ]]; then
  num_nodes=$SLURM_NTASKS
  node_rank=$SLURM_PROCID
  coordinator=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):$port
fi

bert_jax=(bert-jax)
command -v bert-jax > /dev/null || bert_jax=(python -m bert_jax)
if [[ -n $num_nodes && $num_nodes -gt 1 ]]; then
  : "${coordinator:?--coordinator=HOST:PORT is needed with --num_nodes}"
  : "${node_rank:?--node_rank is needed with --num_nodes}"
  exec "${bert_jax[@]}" pretrain --coordinator_address="$coordinator" \
    --num_processes="$num_nodes" --process_id="$node_rank" "$@"
fi
exec "${bert_jax[@]}" pretrain "$@"
