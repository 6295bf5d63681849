"""`bert-jax finetune --config=configs/FILE.py:ARG --workdir=DIR --config.init_from=CHECKPOINT`

Fine-tunes a pretrained encoder (a bert-jax run, a Hugging Face directory or a Google TF
checkpoint) on a task, on the same trainer, mesh and checkpoints as pretraining: interrupted
runs resume with the same command. Configs: glue.py:TASK, squad.py:v1.1|v2.0,
ner.py:conll2003, swag.py; `config.task` picks the task's module (`bert_jax/tasks/registry.py`).
At the end the best checkpoint (by the task's main metric) scores every evaluation split into
WORKDIR/eval_results.json and writes the task's prediction files beside it: GLUE dev
predictions and test submissions (`bert_jax/tasks/finetune_outputs.py`); SQuAD predictions.json
/ nbest.json / null_odds.json, CoNLL files for conlleval, SWAG predictions
(`bert_jax/tasks/task_outputs.py`; these reuse the eval outputs the run kept of its best step
when this session evaluated it).
Multi-process flags: `bert_jax/cli/training.py`.
"""

from __future__ import annotations

from bert_jax.cli import training

PROG = "bert-jax finetune"

DESCRIPTION = """\
Fine-tune a pretrained encoder on a task: a GLUE task (configs/glue.py:TASK, TASK one of cola
sst2 mrpc stsb qqp mnli qnli rte wnli), SQuAD (configs/squad.py:v1.1 or v2.0), CoNLL-2003 NER
(configs/ner.py:conll2003) or SWAG (configs/swag.py), with the BERT paper's recipe for each; or
the embedded task configs/glue.py:docsource (reference or docstring sentence?), which needs no
download and follows the quickstart.

--config.init_from names the encoder: a bert-jax workdir or checkpoint step, a Hugging Face BERT
directory or a Google TF checkpoint; its architecture and vocabulary are used. Training runs on
the same trainer, mesh and checkpoints as pretraining, so the same command resumes. At the end
the best checkpoint (by the task's main metric) scores every evaluation split into
WORKDIR/eval_results.json and writes the task's prediction files beside it; `bert-jax evaluate`
and `bert-jax predict` use the run afterwards. Add ",runlocal" to the config's argument for a few
steps on a small batch that check a setup end to end."""

EXAMPLES = [
    "bert-jax finetune --config=configs/glue.py:docsource \\\n"
    "    --workdir=workdir/quickstart-finetune --config.init_from=workdir/quickstart",
    "bert-jax finetune --config=configs/glue.py:mrpc --workdir=runs/mrpc \\\n"
    "    --config.init_from=HF_BERT_DIR --config.data.data_dir=GLUE_DIR",
    "bert-jax finetune --config=configs/squad.py:v1.1 --workdir=runs/squad \\\n"
    "    --config.init_from=HF_BERT_DIR --config.data.data_dir=SQUAD_DIR",
    "bert-jax finetune --config=configs/glue.py:mrpc --help   # the MRPC recipe, field by field",
]


def _parser():
    return training.run_parser(PROG, DESCRIPTION, EXAMPLES)


def _builder():
    from bert_jax.tasks import registry

    return registry.build


def main(argv: list[str]) -> int:
    values, summaries = training.train(argv, _parser(), _builder)
    if summaries is None:
        return 1
    if summaries.finished:  # a preempted run writes its outputs when it is resumed and ends
        from bert_jax.tasks import registry

        if registry.family(values.config.task) == "glue":
            from bert_jax.tasks import finetune_outputs

            finetune_outputs.write_outputs(values.config, values.workdir)
        else:
            from bert_jax.tasks import task_outputs

            task_outputs.write_outputs(values.config, values.workdir, best=summaries.best)
    return 0
