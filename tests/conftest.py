"""Test setup: 8 fake CPU devices for sharding tests, set before anything imports jax."""

import os
import pathlib
import shutil
import tempfile

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# One XLA compilation cache per test session, shared by the xdist workers and every bert-jax
# subprocess the tests start (they inherit the environment): the end-to-end tests compile the
# same small steps again and again, and a hit skips XLA's compile. Set in the first process
# (the controller under -n), fresh each session, so no run reads another's entries.
_OWN_CACHE = None  # the cache directory this process made, removed when its session ends
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_CACHE = tempfile.mkdtemp(prefix="bert-jax-tests-xla-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]

SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_unconfigure(config):
    """The session's compilation cache goes with it (tens of MB a run): removed by the process
    that made it, after the xdist workers are done."""
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


def shared_path(*parts: str) -> pathlib.Path:
    """A file under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} is missing")
    return path


@pytest.fixture
def uncased_vocab() -> pathlib.Path:
    return shared_path("vocab", "bert-base-uncased", "vocab.txt")


@pytest.fixture
def cased_vocab() -> pathlib.Path:
    return shared_path("vocab", "bert-base-cased", "vocab.txt")


@pytest.fixture
def gutenberg_dir() -> pathlib.Path:
    return shared_path("corpus", "gutenberg")


def pytest_collection_modifyitems(items):
    """Modules holding a slow test run first, each kept whole (its module fixtures are built
    once): under `-n 2` with `--dist=worksteal` (pyproject.toml) the long end-to-end runs then
    start early and the short tests fill in around them, instead of one long test starting last
    while the other worker idles."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)
