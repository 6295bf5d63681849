"""Start-up of multi-process runs: nothing to do alone; incomplete settings are one line.
(Joining for real is tests/trainer/test_multiprocess.py.)"""

import pytest

from bert_jax import distributed
from bert_jax.errors import UserError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in [*distributed.ENV.values(), "SLURM_NTASKS", "SLURM_PROCID", "OMPI_COMM_WORLD_SIZE"]:
        monkeypatch.delenv(name, raising=False)


def test_single_process_needs_nothing():
    assert distributed.initialize() is False


def test_incomplete_settings_name_what_is_missing(monkeypatch):
    with pytest.raises(UserError, match=r"missing --num_processes \(or JAX_NUM_PROCESSES\)"):
        distributed.initialize("localhost:1234", None, 0)
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "localhost:1234")
    with pytest.raises(UserError, match="--process_id"):
        distributed.initialize(num_processes=2)
    with pytest.raises(UserError, match=r"--process_id 2 must be in \[0, --num_processes 2\)"):
        distributed.initialize(num_processes=2, process_id=2)
