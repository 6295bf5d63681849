"""Peer-benchmark plumbing: parsing the peers' printed lines, and the errors for a bad set-up.
No real peer runs here; a few tiny stand-in scripts check the subprocess handling."""

import argparse
import sys
import textwrap

import pytest

from bert_jax.bench import peers
from bert_jax.errors import UserError

# Lines as peer_step.py and peer_masking.py print them, with the noise that comes around them.
STEP_OUTPUT = """\
Some weights of BertForPreTraining were not initialized from the model checkpoint
hf-torch BertForPreTraining: 5.990 s/step  (33.1 model GFLOP/s)  min 5.812 max 6.404
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
hf-flax FlaxBertForPreTraining (jit): 5.690 s/step  (34.9 model GFLOP/s)  min 5.601 max 5.977
"""
MASKING_OUTPUT = "keras-hub MaskedLMMaskGenerator: 17883 seq/s (S=128, B=256, 2 cores)\n"


def test_parses_step_lines():
    assert peers.parse_peer_output("step", STEP_OUTPUT) == {
        "hf-torch": {"s_per_step": 5.99, "gflops": 33.1, "min_s": 5.812, "max_s": 6.404},
        "hf-flax": {"s_per_step": 5.69, "gflops": 34.9, "min_s": 5.601, "max_s": 5.977},
    }


def test_parses_masking_line():
    assert peers.parse_peer_output("masking", MASKING_OUTPUT) == {
        "keras-hub": {"seq_per_s": 17883.0}
    }


def test_no_result_lines_give_nothing():
    assert peers.parse_peer_output("step", MASKING_OUTPUT) == {}
    assert peers.parse_peer_output("masking", STEP_OUTPUT) == {}


def test_missing_python_is_a_user_error(tmp_path):
    missing = tmp_path / "venv" / "bin" / "python"
    with pytest.raises(UserError, match=f"--peer_python {missing}: no such executable"):
        peers.run_peer("step", str(missing), [], peers_dir=str(tmp_path))


def test_missing_script_and_folder_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="peer_masking.py is missing"):
        peers.run_peer("masking", sys.executable, [], peers_dir=str(tmp_path))
    with pytest.raises(UserError, match="--peers_dir .*: no such directory"):
        peers.find_peer_dir(str(tmp_path / "absent"))
    with pytest.raises(UserError, match="--peers_dir gs://b/peers: must be a local folder"):
        peers.find_peer_dir("gs://b/peers")


def _stand_in(folder, name, body):
    (folder / peers.PEER_SCRIPTS[name]).write_text(textwrap.dedent(body))
    return str(folder)


def test_runs_a_peer_with_its_arguments_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/project/packages")
    folder = _stand_in(
        tmp_path,
        "step",
        """\
        import os, sys
        assert "PYTHONPATH" not in os.environ, "project path leaked into the peer"
        seconds = float(sys.argv[1]) * int(os.environ["STEPS"])
        print(f"hf-torch BertForPreTraining: {seconds:.3f} s/step  (12.5 model GFLOP/s)")
        """,
    )
    figures = peers.run_peer("step", sys.executable, ["0.5"], env={"STEPS": "3"}, peers_dir=folder)
    assert figures == {"hf-torch": {"s_per_step": 1.5, "gflops": 12.5}}


def test_failing_peer_reports_its_last_error_line(tmp_path):
    folder = _stand_in(tmp_path, "masking", "import sys\nsys.exit('no module named keras_hub')\n")
    with pytest.raises(UserError, match="exited with 1: no module named keras_hub"):
        peers.run_peer("masking", sys.executable, [], peers_dir=folder)


def test_peer_without_result_line_is_a_user_error(tmp_path):
    folder = _stand_in(tmp_path, "masking", "print('nothing measured')\n")
    with pytest.raises(UserError, match="no result line .*nothing measured"):
        peers.run_peer("masking", sys.executable, [], peers_dir=folder)


def test_compare_gives_speedups_both_ways(tmp_path):
    step_dir = tmp_path / "step"
    step_dir.mkdir()
    _stand_in(step_dir, "step", f"print({STEP_OUTPUT!r})\n")
    args = argparse.Namespace(peer_python=sys.executable, peers_dir=str(step_dir))
    rows, figures = peers.compare("step", args, ours=2.0, peer_args=[])
    assert figures["peers"]["hf-torch"]["speedup"] == pytest.approx(5.99 / 2.0)
    assert figures["peers"]["hf-flax"]["speedup"] == pytest.approx(5.69 / 2.0)
    assert ("speed-up over hf-flax", "2.85x") in rows

    mask_dir = tmp_path / "masking"
    mask_dir.mkdir()
    _stand_in(mask_dir, "masking", f"print({MASKING_OUTPUT!r})\n")
    args.peers_dir = str(mask_dir)
    _, figures = peers.compare("masking", args, ours=35766.0, peer_args=[])
    assert figures["peers"]["keras-hub"]["speedup"] == pytest.approx(2.0)


def test_compare_does_nothing_without_peer_python():
    parser = argparse.ArgumentParser()
    peers.add_peer_args(parser)
    assert peers.compare("step", parser.parse_args([]), ours=1.0, peer_args=[]) == ([], {})


def test_settings_the_peer_cannot_match_are_refused():
    config = argparse.Namespace(num_layers=4, hidden_size=512, num_heads=8, intermediate_size=2048)
    args = argparse.Namespace(
        predictions=20, vocab=30522, dtype="float32", accum=1, batch=16, seq=128
    )
    assert peers.step_peer_args(config, args) == ["4", "512", "8", "2048", "16", "128"]
    args.dtype = "bfloat16"
    with pytest.raises(UserError, match="dtype=float32, not bfloat16"):
        peers.step_peer_args(config, args)
    data_args = argparse.Namespace(
        batch_size=128, max_seq_length=128, max_predictions=20, masking_sequences=1000
    )
    with pytest.raises(UserError, match="batch_size=256, not 128"):
        peers.masking_peer_args(data_args)


def test_no_settings_check_without_peer_python():
    """`bench step --dtype bfloat16` alone must not trip over the peer's fixed float32."""
    config = argparse.Namespace(num_layers=4, hidden_size=512, num_heads=8, intermediate_size=2048)
    args = argparse.Namespace(
        peer_python=None, peers_dir=None, predictions=20, vocab=30522, dtype="bfloat16", accum=1
    )
    assert peers.compare_step(args, config) == {}
    data_args = argparse.Namespace(peer_python=None, batch_size=64, max_seq_length=512)
    assert peers.compare_masking(data_args, seq_per_s=1.0) == ([], {})


def test_compare_step_passes_the_model_shape_and_step_count(tmp_path):
    folder = _stand_in(
        tmp_path,
        "step",
        """\
        import os, sys
        assert sys.argv[1:] == ["4", "512", "8", "2048", "16", "128"], sys.argv
        steps = os.environ["STEPS"]
        print(f"hf-flax FlaxBertForPreTraining (jit): {steps}.0 s/step  (1 model GFLOP/s)")
        """,
    )
    config = argparse.Namespace(num_layers=4, hidden_size=512, num_heads=8, intermediate_size=2048)
    args = argparse.Namespace(
        peer_python=sys.executable, peers_dir=folder, predictions=20, vocab=30522,
        dtype="float32", accum=1, batch=16, seq=128, steps=6,
    )  # fmt: skip
    figures = peers.compare_step(args, config)
    assert figures["peers"]["hf-flax"] == {"s_per_step": 6.0, "gflops": 1.0}
    assert figures["peer_load_average_1m"] >= 0
