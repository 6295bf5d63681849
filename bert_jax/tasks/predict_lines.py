"""`bert-jax predict` for span and tagging runs: stdin lines in, one JSON object a line out.

  SQuAD       `question<TAB>context` ->
              {"answer": "Denver Broncos", "probability": 0.93,
               "nbest": [{"text": ..., "probability": ...}, ...]}      (5 best)
              v2.0: "answer" is "" when the null score wins by more than the run's threshold
              (the one its evaluation chose, stored with the checkpoint's metrics)
  CoNLL-2003  a sentence (words separated by spaces) ->
              {"words": [...], "tags": [...], "entities": [{"text", "type", "start", "end"}]}
              (start, end: word positions, end exclusive)

Answers are cut from the given context, entities are the given words: never word pieces. Each
chunk of lines runs as the run's evaluation batches (a collective on several hosts).
"""

from __future__ import annotations

from bert_jax.checkpoint import metadata as layout
from bert_jax.errors import UserError
from bert_jax.tasks import ner_metrics
from bert_jax.tasks.span import gather_logits
from bert_jax.tasks.squad import SquadSplit
from bert_jax.tasks.squad_data import SquadExample
from bert_jax.tasks.squad_windows import make_windows
from bert_jax.tasks.task_run import TaskRun

SHOWN_NBEST = 5


def _decode_line(raw: bytes, number: int) -> str:
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise UserError(f"stdin line {number}: not UTF-8 text (byte {e.start})") from None


def squad_rows(run: TaskRun, chunk: list[tuple[int, bytes]]) -> list[dict]:
    examples = []
    for number, raw in chunk:
        fields = _decode_line(raw, number).split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise UserError(
                f"stdin line {number}: expected `question<TAB>context` (two non-empty "
                f"tab-separated fields), found {len(fields)} fields"
            )
        examples.append(SquadExample(str(number), "", fields[0], fields[1], (), ()))
    task, data = run.task, run.config.data
    windows = make_windows(
        task.tokenizer,
        examples,
        data.max_seq_length,
        data.doc_stride,
        data.max_query_length,
        training=False,
    )
    start, end = gather_logits(run.outputs(task.data.batches(windows)), len(windows))
    threshold = (layout.read_metrics(run.step_dir) or {}).get("null_threshold")
    if threshold is None:
        threshold = run.config.decode.null_threshold or 0.0
    decoded = task.decode(start, end, SquadSplit(None, examples, windows), float(threshold))
    rows = []
    for example in examples:
        nbest = decoded.nbest[example.qid]
        answer = decoded.answers[example.qid]
        probability = next((n["probability"] for n in nbest if n["text"] == answer), 0.0)
        shown = [{"text": n["text"], "probability": n["probability"]} for n in nbest]
        rows.append({"answer": answer, "probability": probability, "nbest": shown[:SHOWN_NBEST]})
    return rows


def ner_rows(run: TaskRun, chunk: list[tuple[int, bytes]]) -> list[dict]:
    from bert_jax.tasks.ner import encode_words
    from bert_jax.tasks.token_classification import word_predictions

    sentences = []
    for number, raw in chunk:
        words = _decode_line(raw, number).split()
        if not words:
            raise UserError(f"stdin line {number}: no words (one sentence a line)")
        sentences.append(words)
    task = run.task
    features = encode_words(
        task.tokenizer,
        sentences,
        [["O"] * len(words) for words in sentences],
        task.labels,
        run.config.data.max_seq_length,
    )
    tags = word_predictions(features, run.outputs(task.data.batches(features)), task.labels)
    found = ner_metrics.entities(tags)
    rows = [
        {"words": words, "tags": t, "entities": []}
        for words, t in zip(sentences, tags, strict=True)
    ]
    for sentence, start, end, kind in found:
        words = sentences[sentence][start:end]
        rows[sentence]["entities"].append(
            {"text": " ".join(words), "type": kind, "start": start, "end": end}
        )
    return rows


PREDICTORS = {"squad": squad_rows, "ner": ner_rows}
