"""One path abstraction for every file bert-jax reads or writes: `etils.epath`, the library
Orbax itself uses, so local directories and `gs://` buckets behave alike everywhere.

`gs://` goes through gcsfs (fsspec), never through TensorFlow's filesystem: gcsfs honours
`STORAGE_EMULATOR_HOST` like google-cloud-storage and tensorstore (Orbax's array writer) do,
so one emulator serves a whole run in tests, and a process that has imported TensorFlow for
its input pipeline still writes checkpoints through the same backend as one that has not.
TensorFlow's own `gs://` filesystem ignores every endpoint setting and would reach the real
service. epath reads `EPATH_USE_TF` once, at the first remote path, so it is set here, before
any path is made.
"""

from __future__ import annotations

import logging
import os
import uuid

os.environ.setdefault("EPATH_USE_TF", "false")

from etils import epath  # noqa: E402

from bert_jax.errors import UserError  # noqa: E402

Path = epath.Path
PathLike = epath.PathLike
REMOTE_SCHEMES = ("gs://", "s3://", "az://", "hf://")

# gcsfs logs a failed "zonal bucket" probe at WARNING for every bucket when no application
# default credentials exist (the emulator, anonymous reads); the fallback it takes is right.
logging.getLogger("gcsfs").setLevel(logging.ERROR)


def is_remote(path: PathLike) -> bool:
    return os.fspath(path).startswith(REMOTE_SCHEMES)


def path(value: PathLike) -> epath.Path:
    """`value` as an epath.Path: remote URIs unchanged, local paths made absolute (Orbax and
    TensorBoard need absolute local paths; a relative one would follow the working directory)."""
    text = os.fspath(value)
    if not text:
        raise UserError("empty path")
    if is_remote(text):
        return epath.Path(text)
    return epath.Path(os.path.abspath(os.path.expanduser(text)))


def absolute(value: PathLike) -> str:
    """`value` as an absolute path (remote URLs as they are): what a file records, so another
    working directory still finds it."""
    return os.fspath(value) if is_remote(value) else os.path.abspath(os.fspath(value))


def join(base: PathLike, *parts: str) -> str:
    """`base/part/...` as a string, for APIs that take strings (TensorFlow, tensorboardX)."""
    return os.fspath(path(base).joinpath(*parts))


def write_atomic(target: PathLike, data: bytes | str) -> None:
    """Write `target` through a temporary sibling and rename it into place, so a reader never
    sees half a file (on GCS the rename is a server-side copy; the object appears whole)."""
    target = path(target)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        tmp.write_bytes(data)
    tmp.replace(target)


def glob(pattern: PathLike) -> list[str]:
    """Sorted matches of a glob whose wildcards are in the last component(s), local or remote."""
    text = os.fspath(pattern)
    if not any(c in text for c in "*?["):
        return [os.fspath(path(text))] if path(text).exists() else []
    root, _, rest = text.partition(next(c for c in text if c in "*?["))
    base, _, head = root.rpartition("/")
    base_path = path(base or ".")
    return sorted(os.fspath(p) for p in base_path.glob(head + text[len(root) :]))


def describe_error(location: PathLike, error: BaseException) -> str:
    """One line for an I/O failure on `location`: what failed and, for cloud storage, the
    usual reasons (no credentials, no such bucket, no permission)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if is_remote(location):
        bucket = os.fspath(location).split("://", 1)[1].split("/", 1)[0]
        return (
            f"cannot access {os.fspath(location)}: {text} (check that bucket {bucket} exists "
            "and that credentials are set: `gcloud auth application-default login` or a "
            "service account)"
        )
    return f"cannot access {os.fspath(location)}: {text}"


def _is_root(p: epath.Path) -> bool:
    return p == p.parent or os.fspath(p).endswith("://")


def check_accessible(location: PathLike, writable: bool = False) -> epath.Path:
    """Fail early, with one line naming the path, when `location` (a directory that may not
    exist yet) cannot be read or, with `writable`, created: a missing bucket or absent
    credentials surface here, before anything is written."""
    p = path(location)
    try:
        if p.exists():
            return p
        if writable:
            ancestor = p.parent
            # Stop below the root: for gs:// at the bucket (listing "gs://" itself would list
            # every bucket of the project, and succeed for a missing one).
            while not _is_root(ancestor.parent) and not ancestor.exists():
                ancestor = ancestor.parent
            if is_remote(p):
                # A bucket root "exists" only when the bucket does; probing lists it.
                list(ancestor.iterdir())
            return p
    except UserError:
        raise
    except Exception as e:  # gcsfs/google-auth raise many types; all mean "cannot access"
        raise UserError(describe_error(p, e)) from e
    raise UserError(f"path does not exist: {os.fspath(p)}")
