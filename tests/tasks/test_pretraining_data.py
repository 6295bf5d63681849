"""The loop's input with several processes: each process gets the synthetic rows its devices
hold, and processes that share batch shards (one input stream) save one data position."""

import jax
import numpy as np
from jax.sharding import Mesh

from bert_jax import sharding
from bert_jax.data import synthetic as synthetic_data
from bert_jax.tasks import pretraining_data as pretrain_data
from configs import pretrain


def synthetic_config():
    c = pretrain.get_config("tiny,runlocal")
    c.data.synthetic, c.model.vocab_size = True, 128
    return c


def test_synthetic_rows_are_the_global_rows_the_process_holds():
    c = synthetic_config()
    feed = sharding.HostFeed(
        mesh=Mesh(np.array(jax.devices()[:8]).reshape(4, 1, 2), sharding.MESH_AXES),
        group=1, groups=2, shards=(1, 3), num_shards=4, process_count=2,
    )  # fmt: skip
    host = next(pretrain_data.open_data(c, 16, feed).train(None))
    full = synthetic_data.global_batch(c.data.seed, 0, 16, 128, 20, 128)
    rows = [4, 5, 6, 7, 12, 13, 14, 15]  # shards 1 and 3 of 4, four rows each
    for key, value in full.items():
        np.testing.assert_array_equal(host[key], value[rows], err_msg=key)


def test_processes_of_one_input_group_save_one_stream_position(monkeypatch):
    """tensor=8 over two hosts: both processes read stream 0 of 1; the checkpoint keeps it once,
    as the position of a one-stream run (what the pipeline resumes from)."""

    class Stream:
        def state(self):
            return {"process_index": 0, "process_count": 1, "step": 7}

    def gather(state):  # what `pipeline.gather_process_states` returns from two processes
        return {"version": 1, "process_count": 2, "processes": [state, dict(state)]}

    from bert_jax.data import pipeline

    monkeypatch.setattr(pipeline, "gather_process_states", gather)
    feed = sharding.HostFeed(
        mesh=None, group=0, groups=1, shards=(0,), num_shards=1, process_count=2
    )
    saved = pretrain_data.stream_state(Stream(), feed)
    assert saved["process_count"] == 1 and saved["processes"] == [Stream().state()]
