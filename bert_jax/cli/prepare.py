"""`bert-jax prepare`: tokenize a corpus into pretraining shards (see `bert_jax.data.prepare`)."""

from __future__ import annotations

import argparse
import os

from bert_jax.cli.parser import command_parser
from bert_jax.data.corpus_readers import FORMATS, PROSE_DOCUMENTS, CorpusSpec

DESCRIPTION = """\
Tokenize a corpus into pretraining shards: every document is cut into sentences, tokenized with
--vocab (or a SentencePiece vocab trained on the corpus), and written as TFRecord shards that
`bert-jax pretrain --config.data.data_dir=OUTPUT` reads. The corpus may be plain files (local or
gs://, globs allowed) or a TensorFlow Datasets dataset such as Wikipedia; every core works on it,
and the same seed gives the same shards."""

EXAMPLES = [
    "bert-jax prepare --input=workdir/quickstart/demo_data/text/corpus.txt --format=lines \\\n"
    "    --vocab=workdir/quickstart/demo_data/text/vocab.txt --output=/tmp/demo_shards",
    "bert-jax prepare --input='books/*.txt' --format=prose --train_sentencepiece=32000 \\\n"
    "    --output=gs://BUCKET/shards_128",
    "bert-jax prepare --input=wikipedia/20231101.en --format=tfds --data_dir=gs://BUCKET/tfds \\\n"
    "    --vocab=vocab.txt --output=gs://BUCKET/wiki_128",
]

EPILOG = """\
formats:
  lines  one sentence per line, a blank line between documents (the original BERT layout)
  prose  plain text with blank-line-separated paragraphs, split into sentences; each file is a
         document (--prose_documents=paragraph: each paragraph is)
  jsonl  one JSON object per line, the document in --text_field
  tfds   a TensorFlow Datasets name (e.g. wikipedia/20231101.en) in --data_dir, --split

Paths may be local or gs://, with globs; several globs are separated by commas. OUTPUT gets
train-NNNNN-of-MMMMM.tfrecord, eval-00000-of-00001.tfrecord and, last, metadata.json. The eval
file holds at least one document: when the share asked for rounds to none, one document is held
out; with no document to spare (or --eval_documents=0) no eval file is written, the summary says
so, and pretraining skips evaluation. An interrupted run continues where it stopped when rerun
with the same arguments.
"""


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("bert-jax prepare", DESCRIPTION, EXAMPLES, epilog=EPILOG)
    p.add_argument("--input", required=True, help="GLOB[,GLOB...] or a TFDS dataset name")
    p.add_argument("--format", choices=FORMATS, default="lines", help="how the input is laid out")
    p.add_argument("--output", required=True, help="directory for the shards (local or gs://)")
    vocab = p.add_mutually_exclusive_group(required=True)
    vocab.add_argument("--vocab", help="vocab.txt (WordPiece) or *.model (SentencePiece)")
    vocab.add_argument(
        "--train_sentencepiece",
        type=int,
        metavar="VOCAB_SIZE",
        help="train a SentencePiece vocab of this size on the corpus (OUTPUT/spm.model), use it",
    )
    case = p.add_mutually_exclusive_group()
    case.add_argument(
        "--cased", dest="lowercase", action="store_false", default=None,
        help="keep case and accents (default: as the vocab was made)",
    )  # fmt: skip
    case.add_argument(
        "--uncased", dest="lowercase", action="store_true", help="lowercase and strip accents"
    )
    p.add_argument("--num_shards", type=int, default=16, help="training shard files")
    held_out = p.add_mutually_exclusive_group()
    held_out.add_argument("--eval_documents", type=int, help="hold out exactly N documents")
    held_out.add_argument(
        "--eval_fraction",
        type=float,
        default=0.01,
        help="hold out this share of documents (at least one)",
    )
    p.add_argument("--seed", type=int, default=0, help="decides the eval split and shard order")
    p.add_argument("--workers", type=int, default=_cpu_count(), help="processes (default: cores)")
    p.add_argument("--text_field", default="text", help="jsonl/tfds: the field holding the text")
    p.add_argument(
        "--prose_documents", choices=PROSE_DOCUMENTS, default="file",
        help="prose: what one document is",
    )  # fmt: skip
    p.add_argument("--language", default="en", help="sentence splitter language (ISO 639)")
    p.add_argument("--data_dir", help="tfds: where the dataset is (or is built); may be gs://")
    p.add_argument("--split", default="train", help="tfds: the split to read")
    p.add_argument("--no_progress", action="store_true", help="no progress bars on stderr")
    return p


def main(argv: list[str]) -> int:
    from bert_jax.data.prepare import PrepareOptions, format_summary, prepare, summary_table

    args = build_parser().parse_args(argv)
    corpus = CorpusSpec(
        format=args.format,
        inputs=tuple(i.strip() for i in args.input.split(","))
        if args.format != "tfds"
        else (args.input,),
        text_field=args.text_field,
        prose_documents=args.prose_documents,
        language=args.language,
        data_dir=args.data_dir,
        split=args.split,
    )
    options = PrepareOptions(
        corpus=corpus,
        output=args.output,
        vocab=args.vocab,
        lowercase=args.lowercase,
        train_sentencepiece=args.train_sentencepiece,
        num_shards=args.num_shards,
        eval_documents=args.eval_documents,
        eval_fraction=args.eval_fraction,
        seed=args.seed,
        workers=args.workers,
        progress=False if args.no_progress else None,
    )
    summary = prepare(options)
    print(format_summary(summary))
    summary_table(summary).print()
    return 0
