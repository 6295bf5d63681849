"""Training a WordPiece vocab: BERT's conventions, text it covers, the same file every run."""

import subprocess
import sys

import pytest
from transformers import BertTokenizerFast

from bert_jax.data.wordpiece_vocab import train_wordpiece
from bert_jax.errors import UserError
from bert_jax.text.load import load_tokenizer

SENTENCES = [
    "The parser reads the configuration file and returns a dictionary of sections.",
    "Each section maps option names to values; values are strings until converted.",
    "Return the number of items in the container, or raise TypeError.",
    "Café, naïve and Ελληνικά keep their letters; accents are stripped when uncased.",
] * 20

TRAIN_IN_A_NEW_PROCESS = """
import sys
from bert_jax.data import stdlib_docs
from bert_jax.data.wordpiece_vocab import train_wordpiece
text = [p for doc in stdlib_docs.reference_documents()[:30] for p in doc.paragraphs]
sys.stdout.write("\\n".join(train_wordpiece(text, 2000)))
"""


def test_bert_conventions_and_coverage(tmp_path):
    vocab = train_wordpiece(SENTENCES, 300)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) == len(set(vocab)) <= 300
    assert "the" in vocab and "##s" in vocab
    assert "É" not in vocab and "e" in vocab and "λ" in vocab  # lowercased, accents stripped
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    reference = BertTokenizerFast(vocab_file=str(path), do_lower_case=True)
    ours = load_tokenizer(path)  # uncased: the vocab has no capitals
    for sentence in SENTENCES[:4]:
        ids = reference(sentence, add_special_tokens=False)["input_ids"]
        assert reference.unk_token_id not in ids
        assert ours.encode(sentence) == ids


def test_the_same_vocab_in_every_process():
    """The trainer numbers pieces in hash-map order unless given them first; two processes
    (each with its own hash seed) must still write the same file."""
    runs = [
        subprocess.run([sys.executable, "-c", TRAIN_IN_A_NEW_PROCESS], capture_output=True,
                       text=True, check=True).stdout
        for _ in range(2)
    ]  # fmt: skip
    assert runs[0] == runs[1] and len(runs[0].split("\n")) == 2000


def test_a_vocab_too_small_for_the_special_tokens():
    with pytest.raises(UserError, match="vocab size 5"):
        train_wordpiece(SENTENCES, 5)
