"""Example creation (NSP, SOP, full-sentence packing) checked by decoding synthetic token ids back
to (document, sentence, position), against the rules of the original algorithms."""

import math
import random

import numpy as np

from bert_jax.data.pretraining import DocumentBlock, Spans, _truncate_pairs, create_examples
from tests.data import synthetic_shards as synthetic

PAD, CLS, SEP = 0, 101, 102


def block_of(docs) -> DocumentBlock:
    sentences = [s for doc in docs for s in doc]
    return DocumentBlock.from_lengths(
        np.concatenate(sentences), [len(s) for s in sentences], [len(d) for d in docs]
    )


def make(corpus, mode="nsp", seq=128, short=0.1, seed=0):
    return create_examples(
        block_of(corpus.docs),
        mode=mode,
        max_seq_length=seq,
        short_seq_prob=short,
        seed=seed,
        tokens=corpus.special_tokens(),
    )


def segments(example_ids, mask):
    """(A, B) token arrays of one example; checks the [CLS] A [SEP] B [SEP] [PAD]... frame."""
    length = int(mask.sum())
    ids = example_ids[:length]
    assert ids[0] == CLS and ids[-1] == SEP
    assert np.all(example_ids[length:] == PAD)
    seps = np.flatnonzero(ids == SEP)
    assert len(seps) in (1, 2)
    return ids[1 : seps[0]], ids[seps[0] + 1 : seps[-1]]


def contiguous(tokens, corpus):
    """True if the tokens are consecutive text of one document."""
    return len(set(corpus.decode(tokens)[0])) == 1 and bool(np.all(np.diff(tokens) == 1))


def within(count, trials, p, sigmas=5.0):
    mean, sd = trials * p, math.sqrt(trials * p * (1 - p))
    return abs(
        count - mean
    ) <= sigmas * sd + 1, f"{count} of {trials}, expected {mean:.0f}+-{sd:.0f}"


def test_nsp_pairs_follow_the_original_rules():
    corpus = synthetic.Corpus(2000, seed=0, sentences=(1, 40), lengths=(1, 16))
    sizes = corpus.sentence_lengths
    out = make(corpus, short=0.0)
    assert out["input_ids"].shape[1] == 128 and out["input_ids"].dtype == np.int32
    n = len(out["nsp_label"])
    counted = counted_random = untruncated = 0
    for i in range(n):
        a, b = segments(out["input_ids"][i], out["input_mask"][i])
        assert len(a) >= 1 and len(b) >= 1 and len(a) + len(b) <= 125
        seg = out["segment_ids"][i]
        np.testing.assert_array_equal(seg[: len(a) + 2], 0)
        np.testing.assert_array_equal(seg[len(a) + 2 : len(a) + len(b) + 3], 1)
        assert not seg[len(a) + len(b) + 3 :].any()
        assert contiguous(a, corpus) and contiguous(b, corpus)
        (a_doc, a_sent, a_pos), (b_doc, b_sent, b_pos) = corpus.decode(a), corpus.decode(b)
        label = out["nsp_label"][i]
        truncated = len(a) + len(b) == 125
        if label == 0:  # B is the text right after A (maybe less what truncation cut)
            assert b_doc[0] == a_doc[0] and b_sent[0] >= a_sent[-1]
            assert truncated or contiguous(np.concatenate([a, b]), corpus)
        else:
            assert b_doc[0] != a_doc[0]  # 2000 documents: 10 tries always find another
        if not truncated:  # both segments start and end on sentence boundaries
            untruncated += 1
            assert a_pos[0] == 0 and b_pos[0] == 0
            assert a_pos[-1] == sizes[a_doc[-1]][a_sent[-1]] - 1
            assert b_pos[-1] == sizes[b_doc[-1]][b_sent[-1]] - 1
        # A single-sentence chunk (only the last sentence of a document here) must take a
        # random B; every other chunk flips a fair coin.
        whole_last_sentence = (
            len(set(a_sent)) == 1
            and a_sent[0] == len(sizes[a_doc[0]]) - 1
            and a_pos[0] == 0
            and len(a) == sizes[a_doc[0]][a_sent[0]]
        )
        if not whole_last_sentence:
            counted += 1
            counted_random += int(label)
    assert untruncated > 200
    ok, message = within(counted_random, counted, 0.5)
    assert ok, message


def test_random_next_comes_from_another_document_even_in_a_small_block():
    """With two or three documents in a block, the original's 10 draws end on A's own document
    once in 2**10 (or 1.5**10) random pairs; here never. Labels stay a fair coin."""
    for num_docs, sentences, seed in ((2, 20_000, 0), (3, 10_000, 1)):
        # Sentences of 60 tokens: a chunk is 3 sentences; about 9,000 and 6,700 random draws.
        corpus = synthetic.Corpus(num_docs, seed, (sentences, sentences), lengths=(60, 60))
        out = make(corpus, short=0.0, seed=seed)
        n = len(out["nsp_label"])
        mask = out["input_mask"].astype(bool)
        seps = np.argsort(out["input_ids"] != SEP, axis=1, kind="stable")[:, :2]
        a_first = out["input_ids"][:, 1]
        b_first = out["input_ids"][np.arange(n), seps[:, 0] + 1]
        a_doc, b_doc = corpus.decode(a_first)[0], corpus.decode(b_first)[0]
        random_next = out["nsp_label"] == 1
        assert random_next.sum() > 5_000 and mask.any()
        assert not np.any(a_doc[random_next] == b_doc[random_next])
        assert np.all(a_doc[~random_next] == b_doc[~random_next])
        # Only the last chunk of a document can be forced to a random B (a single sentence).
        ok, message = within(int(random_next.sum()), n, 0.5, sigmas=4.0)
        assert ok, message
        if num_docs == 3:  # every other document is as likely
            for doc in range(3):
                others = b_doc[random_next & (a_doc == doc)]
                counts = np.bincount(others, minlength=3)[[d for d in range(3) if d != doc]]
                ok, message = within(int(counts[0]), int(counts.sum()), 0.5, sigmas=4.0)
                assert ok, message


def test_a_block_of_one_document_has_only_next_sentence_pairs():
    corpus = synthetic.Corpus(1, seed=2, sentences=(300, 300), lengths=(1, 40))
    out = make(corpus, short=0.1)
    assert len(out["nsp_label"]) > 20 and not out["nsp_label"].any()
    one_sentence = synthetic.Corpus(1, seed=2, sentences=(1, 1), lengths=(5, 5))
    assert len(make(one_sentence)["nsp_label"]) == 0  # neither a next nor another document


def test_short_sequences_appear_at_short_seq_prob():
    # One-token sentences: a chunk reaches its target exactly, so an example is shorter than
    # the maximum only for a short target or at a document's end (excluded).
    corpus = synthetic.Corpus(150, seed=1, sentences=(2000, 2000), lengths=(1, 1))
    out = make(corpus, short=0.1, seed=3)
    short, counted = [], 0
    for i in range(len(out["nsp_label"])):
        a, b = segments(out["input_ids"][i], out["input_mask"][i])
        (_, a_sent, _), (_, b_sent, _) = corpus.decode(a), corpus.decode(b)
        if a_sent[-1] == 1999 or b_sent[-1] == 1999:
            continue
        counted += 1
        if len(a) + len(b) < 125:
            short.append(len(a) + len(b))
    # A short target is uniform in [2, 125]: below 125 with probability 123/124, then uniform
    # over [2, 124] (mean 63, standard deviation 35.5).
    ok, message = within(len(short), counted, 0.1 * 123 / 124)
    assert ok, message
    assert counted > 2000
    assert abs(np.mean(short) - 63) < 5 * 35.5 / math.sqrt(len(short))


def test_truncation_matches_the_original_loop():
    def original(a, b, max_num_tokens, rng):  # google-research/bert truncate_seq_pair
        a, b = list(range(a)), list(range(1000, 1000 + b))
        while len(a) + len(b) > max_num_tokens:
            longer = a if len(a) > len(b) else b
            if rng.random() < 0.5:
                del longer[0]
            else:
                longer.pop()
        return a, b

    cases = [(100, 60, 125), (60, 100, 125), (80, 80, 125), (200, 3, 125), (70, 56, 125), (5, 5, 9)]
    trials = 4000
    for a, b, limit in cases:
        spans = Spans(
            a_start=np.zeros(trials, np.int64),
            a_length=np.full(trials, a),
            b_start=np.full(trials, 1000),
            b_length=np.full(trials, b),
            label=np.zeros(trials, np.int32),
        )
        ours = _truncate_pairs(spans, limit, np.random.default_rng(0))
        rng = random.Random(0)
        reference = [original(a, b, limit, rng) for _ in range(trials)]
        # The same kept lengths, always.
        assert set(ours.a_length) == {len(r[0]) for r in reference}
        assert set(ours.b_length) == {len(r[1]) for r in reference}
        # The same distribution of tokens cut from the front (mean within 5 standard errors).
        for ours_front, ref_front in [
            (ours.a_start, [r[0][0] if r[0] else 0 for r in reference]),
            (ours.b_start - 1000, [r[1][0] - 1000 if r[1] else 0 for r in reference]),
        ]:
            ref_front = np.array(ref_front)
            sd = math.sqrt((ours_front.var() + ref_front.var()) / trials) + 1e-9
            assert abs(ours_front.mean() - ref_front.mean()) < 5 * sd + 1e-6


def test_sop_swaps_consecutive_segments_half_the_time():
    corpus = synthetic.Corpus(300, seed=2, sentences=(1, 30), lengths=(1, 16))
    out = make(corpus, mode="sop", short=0.1)
    n = len(out["nsp_label"])
    for i in range(n):
        a, b = segments(out["input_ids"][i], out["input_mask"][i])
        assert len(a) >= 1 and len(b) >= 1
        assert corpus.decode(a)[0][0] == corpus.decode(b)[0][0]  # one document
        first, second = (a, b) if out["nsp_label"][i] == 0 else (b, a)
        if len(a) + len(b) < 125:  # untruncated: the second part continues the first
            assert contiguous(np.concatenate([first, second]), corpus)
        else:
            assert corpus.decode(first)[1].max() < corpus.decode(second)[1].min()
    ok, message = within(int(out["nsp_label"].sum()), n, 0.5)
    assert ok, message


def test_single_sentence_documents():
    corpus = synthetic.Corpus(30, seed=4, sentences=(1, 1), lengths=(1, 16))
    nsp = make(corpus, mode="nsp")
    assert len(nsp["nsp_label"]) == 30 and nsp["nsp_label"].all()  # each pairs with a random B
    assert len(make(corpus, mode="sop")["nsp_label"]) == 0  # no order to predict
    assert len(make(corpus, mode="mlm_only")["nsp_label"]) > 0


def test_mlm_only_packs_whole_sentences_across_documents():
    corpus = synthetic.Corpus(
        200, seed=5, sentences=(2, 20), lengths=(1, 40), set_lengths={(3, 1): 200}
    )  # longer than 126 tokens
    sizes = corpus.sentence_lengths
    out = make(corpus, mode="mlm_only")
    assert not out["segment_ids"].any() and not out["nsp_label"].any()
    text = []
    for i in range(len(out["nsp_label"])):
        length = int(out["input_mask"][i].sum())
        ids = out["input_ids"][i][:length]
        assert ids[0] == CLS and ids[-1] == SEP and length <= 128
        content = ids[1:-1]
        pieces = np.split(content, np.flatnonzero(content == SEP))
        pieces = [p[p != SEP] for p in pieces]
        docs_here = [corpus.decode(p)[0][0] for p in pieces]
        assert docs_here == list(range(docs_here[0], docs_here[0] + len(pieces)))
        for p in pieces:
            assert contiguous(p, corpus)
        text.append(content[content != SEP])
    # All the text, in order, exactly once.
    everything = np.concatenate(text)
    np.testing.assert_array_equal(everything, np.concatenate([s for d in corpus.docs for s in d]))
    # Sentences are whole except the over-long one, and sequences are full: the next sentence
    # would not have fitted.
    for i, content in enumerate(text[:-1]):
        here, _, position = corpus.decode(content)
        doc, next_sentence, next_position = corpus.decode(text[i + 1][:1])
        if 3 not in here and doc[0] != 3:
            assert position[0] == 0 and next_position[0] == 0
            next_size = sizes[doc[0]][next_sentence[0]]
            joint = int(corpus.decode(content[-1:])[0][0] != doc[0])
            assert int(out["input_mask"][i].sum()) - 2 + joint + next_size > 126


def test_deterministic_in_the_seed():
    corpus = synthetic.Corpus(50, seed=6)
    first, again, other = make(corpus, seed=1), make(corpus, seed=1), make(corpus, seed=2)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["input_ids"][:10], other["input_ids"][:10])
