"""A local Google Cloud Storage emulator for tests: `gcs_emulator` (session) starts
`gcp-storage-emulator` in memory on a free port and points google-cloud-storage, gcsfs (which
`bert_jax.paths` uses for gs://) and tensorstore (Orbax's array writer) at it; `gcs_bucket`
(per test) creates a fresh bucket there and returns its `gs://name`.

Use from a test module with `pytest_plugins = ["tests.gcs"]` at its top (importing the fixtures
by name would make ruff see the test arguments as redefinitions). Subprocesses started by a test
inherit the endpoint through the environment; `reset_gcs_clients()` makes this process see what
they wrote (gcsfs caches listings).

TensorFlow's own gs:// filesystem ignores these endpoints (it would reach the real service), so
nothing that reads through TensorFlow can be tested here.

The emulator lacks the JSON API's `moveTo` (a same-bucket rename; gcsfs uses it for every
rename, e.g. `bert_jax.paths.write_atomic`): it answers 501, which gcsfs retries for about 30
seconds before it falls back to copy + delete. Running this file as a script starts the emulator
with `moveTo` added as that copy + delete, so renames take milliseconds as on real GCS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

_ENDPOINT_VARIABLES = ("STORAGE_EMULATOR_HOST", "TENSORSTORE_GCS_HTTP_URL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _check_installed() -> None:
    try:
        import gcp_storage_emulator  # noqa: F401
    except ImportError:
        pytest.skip("gcp-storage-emulator is not installed (pip install gcp-storage-emulator)")


def _serve(port: int) -> None:
    """The in-memory emulator on `port`, with `moveTo` (see the module docstring)."""
    from http import HTTPStatus

    from gcp_storage_emulator import server
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import objects

    def move(request, response, storage, *args, **kwargs):
        bucket, source = request.params["bucket_name"], request.params["object_id"]
        try:
            moved = objects._copy(
                request.base_url, storage, bucket, source, bucket, request.params["dest_object_id"]
            )
        except NotFound:
            response.status = HTTPStatus.NOT_FOUND
            return
        objects._delete(storage, bucket, source)
        response.json(moved)

    route = r"^(?:/storage/v1)?/b/(?P<bucket_name>[-.\w]+)/o/(?P<object_id>.*[^/]+)/moveTo/o/"
    route += r"(?P<dest_object_id>.*[^/]+)$"
    server.HANDLERS = ((route, {"POST": move}), *server.HANDLERS)
    from gcs_generations import with_generations  # tensorstore needs them (this runs as a script)

    server.HANDLERS = with_generations(server.HANDLERS)
    server.create_server("localhost", port, in_memory=True).run()


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gcp-storage-emulator exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b?project=test", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gcp-storage-emulator did not answer at {url} within {timeout:.0f} s")


def reset_gcs_clients() -> None:
    """Forget cached gcsfs filesystems (and their listing caches), so the next gs:// access
    reads the current endpoint and sees objects other processes wrote."""
    try:
        import gcsfs
    except ImportError:
        return
    gcsfs.GCSFileSystem.clear_instance_cache()
    from etils.epath import backend

    backend.fsspec_backend._get_filesystem.cache_clear()


@pytest.fixture(scope="session")
def gcs_emulator():
    """Base URL of an in-memory GCS emulator; the endpoint variables point at it meanwhile."""
    _check_installed()
    port = _free_port()
    url = f"http://localhost:{port}"
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    saved = {name: os.environ.get(name) for name in _ENDPOINT_VARIABLES}
    try:
        _wait_until_up(url, process)
        for name in _ENDPOINT_VARIABLES:
            os.environ[name] = url
        reset_gcs_clients()
        yield url
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_gcs_clients()
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def gcs_bucket(gcs_emulator) -> str:
    """`gs://NAME` of a new, empty bucket on the emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    name = f"test-{uuid.uuid4().hex[:12]}"
    client = storage.Client(credentials=AnonymousCredentials(), project="test")
    client.create_bucket(name)
    reset_gcs_clients()
    return f"gs://{name}"


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
