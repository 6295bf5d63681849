"""`bert-jax finetune --config=configs/FILE.py:ARG --workdir=DIR --config.init_from=CHECKPOINT`

Fine-tunes a pretrained encoder (a bert-jax run, a Hugging Face directory or a Google TF
checkpoint) on a task, on the same trainer, mesh and checkpoints as pretraining: interrupted
runs resume with the same command. Configs: glue.py:TASK, squad.py:v1.1|v2.0,
ner.py:conll2003, swag.py; `config.task` picks the task's module (`bert_jax/tasks/registry.py`).
At the end the best checkpoint (by the task's main metric) scores every evaluation split into
WORKDIR/eval_results.json and writes the task's prediction files beside it: GLUE dev
predictions and test submissions (`bert_jax/tasks/finetune_outputs.py`); SQuAD predictions.json
/ nbest.json / null_odds.json, CoNLL files for conlleval, SWAG predictions
(`bert_jax/tasks/task_outputs.py`).
Multi-process flags: `bert_jax/cli/training.py`.
"""

from __future__ import annotations

from bert_jax.cli import training

PROG = "bert-jax finetune"


def _builder():
    from bert_jax.tasks import registry

    return registry.build


def main(argv: list[str]) -> int:
    values, summaries = training.train(argv, PROG, _builder)
    if summaries is None:
        return 1
    if summaries.finished:  # a preempted run writes its outputs when it is resumed and ends
        from bert_jax.tasks import registry

        if registry.family(values.config.task) == "glue":
            from bert_jax.tasks import finetune_outputs

            finetune_outputs.write_outputs(values.config, values.workdir)
        else:
            from bert_jax.tasks import task_outputs

            task_outputs.write_outputs(values.config, values.workdir)
    return 0
