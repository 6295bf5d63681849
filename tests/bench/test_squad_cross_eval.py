"""`python -m bert_jax.bench.squad_cross_eval`: a transformers QA model scored by the reference
script's evaluation and by bert-jax's. On a small random model with one window per question
almost everywhere, the two evaluations agree (they differ only where the two sides cut a long
context into different windows)."""

import json

import pytest

from bert_jax.bench import squad_cross_eval
from tests.conftest import shared_path
from tests.interop.reference import minilm_dir

pytestmark = pytest.mark.slow  # two model evaluations of an article: about 20 s

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def qa_model_dir(tmp_path_factory):
    """A random 2-layer BertForQuestionAnswering with all-MiniLM-L6-v2's vocabulary."""
    source = minilm_dir()
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )  # fmt: skip
    model = transformers.BertForQuestionAnswering(config)
    with torch.no_grad():  # a head that prefers some tokens, so answers are not all alike
        model.qa_outputs.weight.mul_(50.0)
    directory = tmp_path_factory.mktemp("qa_model")
    model.save_pretrained(directory, safe_serialization=True)
    transformers.BertTokenizerFast.from_pretrained(source).save_pretrained(directory)
    return directory


def test_both_evaluations_of_one_model_agree(qa_model_dir, capsys):
    dev = shared_path("squad", "dev-v1.1.json")
    argv = [str(qa_model_dir), str(dev), "--articles", "-1:", "--max_len", "384"]
    assert squad_cross_eval.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    theirs, ours = result["transformers"], result["bert_jax"]
    assert result["questions"] > 100
    assert result["different_answers"] < 0.05 * result["questions"]
    assert (
        abs(theirs["f1"] - ours["f1"]) < 1.0
        and abs(theirs["exact_match"] - ours["exact_match"]) < 1.0
    )
    assert theirs["f1"] > 0  # some answers overlap the gold ones: the comparison is not of zeros
