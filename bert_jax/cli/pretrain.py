"""`bert-jax pretrain --config=configs/pretrain.py:base --workdir=DIR [--config.X=V ...]`

The same command on one CPU, local GPUs, a TPU VM or a pod slice (run on every host): only the
mesh and batch size overrides change. Multi-process flags: `bert_jax/cli/training.py`.
"""

from __future__ import annotations

from bert_jax.cli import training

PROG = "bert-jax pretrain"

DESCRIPTION = """\
Pretrain BERT (masked language model + next sentence prediction) from the shards `bert-jax
prepare` wrote, on every device of this host, or of all hosts of a TPU pod slice or a GPU
cluster when the same command runs on each.

A run is a config file (--config=configs/pretrain.py:SIZE, SIZE one of tiny mini small medium
base large, or quickstart: a tiny model on the embedded demo corpus) with any field overridden
by --config.FIELD=VALUE; only the mesh and the batch size change between one CPU and a pod.
Checkpoints, TensorBoard logs and the final summary go to --workdir; the same command resumes an
interrupted run there. `bert-jax plot WORKDIR` draws its curves."""

EXAMPLES = [
    "bert-jax pretrain --config=configs/pretrain.py:quickstart --workdir=workdir/quickstart",
    "bert-jax pretrain --config=configs/pretrain.py:tiny,runlocal --workdir=/tmp/smoke \\\n"
    "    --config.data.synthetic=True                 # a few steps on random tokens",
    "bert-jax pretrain --config=configs/pretrain.py:base --workdir=gs://BUCKET/runs/base \\\n"
    "    --config.data.data_dir=gs://BUCKET/shards_128 --config.mesh.fsdp=8",
    "bert-jax pretrain --config=configs/pretrain.py:base --help   # base's values field by field",
]


def _parser():
    return training.run_parser(PROG, DESCRIPTION, EXAMPLES)


def _pretraining():
    from bert_jax.tasks import pretraining

    return pretraining.build


def main(argv: list[str]) -> int:
    values, summaries = training.train(argv, _parser(), _pretraining)
    if summaries is None:
        return 1
    if values.config.data.demo_corpus and summaries.finished:
        import jax

        from bert_jax.data import demo_corpus

        if jax.process_index() == 0:  # the quickstart: say what to run next
            print(demo_corpus.next_step(values.workdir))
    return 0
