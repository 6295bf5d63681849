#!/usr/bin/env bash
# Pretraining on a Cloud TPU VM: a single host (v4-8) or a pod slice (v5p-128, ...). Every worker
# runs the same `bert-jax pretrain` command; JAX finds the other workers by itself.
#
#   launch/tpu_vm.sh install TPU_NAME ZONE
#       copy this checkout to every worker and install it (with jax[tpu]) into ~/bert-jax/.venv
#   launch/tpu_vm.sh run TPU_NAME ZONE --config=configs/pretrain.py:base --workdir=gs://BUCKET/run \
#       --config.data.data_dir=gs://BUCKET/shards [--config.train.batch_size=... --config.mesh.fsdp=...]
#       start (or resume: same command) the run on all workers; output in ~/pretrain.log on each
#   launch/tpu_vm.sh stop TPU_NAME ZONE
#       stop the run on all workers (SIGTERM: the run saves a checkpoint first)
#
# Set CLOUDSDK_CORE_PROJECT (or `gcloud config set project`) to pick the project. Everything
# that shapes the run is in the config and its --config.* overrides; nothing here.
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 3 ]] || usage
action=$1 tpu=$2 zone=$3
shift 3
remote_dir=bert-jax
repo=$(cd "$(dirname "$0")/.." && pwd)

on_all_workers() {
  gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all --command="$1"
}

case $action in
  install)
    archive=$(mktemp --suffix=.tar.gz)
    trap 'rm -f "$archive"' EXIT
    git -C "$repo" ls-files -z --cached --others --exclude-standard \
      | tar -C "$repo" --null -T - -czf "$archive"
    gcloud compute tpus tpu-vm scp "$archive" "$tpu:~/bert-jax.tar.gz" --zone="$zone" --worker=all
    on_all_workers "mkdir -p ~/$remote_dir && tar -xzf ~/bert-jax.tar.gz -C ~/$remote_dir \
      && cd ~/$remote_dir && python3 -m venv .venv && .venv/bin/pip install -q -U pip \
      && .venv/bin/pip install -q -e '.[tpu]' google-cloud-storage"
    ;;
  run)
    [[ $# -ge 1 ]] || usage
    args=$(printf '%q ' "$@")
    # nohup: the run outlives the ssh session; the same command resumes from the workdir.
    on_all_workers "cd ~/$remote_dir && nohup .venv/bin/bert-jax pretrain $args \
      >> ~/pretrain.log 2>&1 < /dev/null & echo \$! > ~/pretrain.pid \
      && echo \"worker \$(hostname): started, log ~/pretrain.log\""
    ;;
  stop)
    on_all_workers "[ -f ~/pretrain.pid ] && kill -TERM \$(cat ~/pretrain.pid) || true"
    ;;
  *)
    usage
    ;;
esac
