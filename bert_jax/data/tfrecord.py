"""TFRecord files read and written here, on any file object `bert_jax.paths` opens (local disk,
gs:// through gcsfs), so shards never go through TensorFlow's filesystem layer: its gs:// client
cannot be pointed at an emulator, and its record iterator cannot start at a byte offset.

A record is framed as TensorFlow writes it:

  uint64 length (little endian) | uint32 masked crc32c(length bytes)
  | data | uint32 masked crc32c(data)

with mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32). Readers start at any
record boundary (`start`), which is how a resumed run skips to its saved place without reading
what comes before it.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterable, Iterator

import google_crc32c

from bert_jax import paths
from bert_jax.errors import UserError

HEADER_BYTES = 12  # length + its CRC
FOOTER_BYTES = 4  # data CRC
FRAMING_BYTES = HEADER_BYTES + FOOTER_BYTES
BLOCK_BYTES = 4 << 20  # read from a file at once
_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_HEADER = struct.Struct("<QI")  # length, masked CRC of the length


def masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFF_FFFF


def frame(record: bytes) -> bytes:
    """One record with its TFRecord framing."""
    length = _LENGTH.pack(len(record))
    return b"".join((length, _CRC.pack(masked_crc(length)), record, _CRC.pack(masked_crc(record))))


def write_file(path: paths.PathLike, records: Iterable[bytes]) -> None:
    """Write `records` to `path` through a temporary sibling renamed into place when complete,
    so an interrupted write never leaves a file that looks whole."""
    target = paths.path(path)
    tmp = target.parent / f".{target.name}.tmp"
    try:
        with tmp.open("wb") as f:
            for record in records:
                f.write(frame(record))
        tmp.replace(target)
    except OSError as e:
        raise UserError(paths.describe_error(target, e)) from e


class Record:
    """One record read from a file: its index, where its framing starts and ends, its data."""

    __slots__ = ("index", "start", "end", "data")

    def __init__(self, index: int, start: int, end: int, data: bytes):
        self.index, self.start, self.end, self.data = index, start, end, data


def read_records(
    f, name: str, start: int = 0, index: int = 0, block_bytes: int = BLOCK_BYTES
) -> Iterator[Record]:
    """The records of the open binary file `f` from byte `start` (a record boundary, where the
    record numbered `index` begins) to the end; UserError naming `name` and the byte offset for
    a truncated or corrupted record. The file is read forward in blocks of `block_bytes`: few
    calls into the file object (each costs tens of microseconds on gcsfs) and few requests."""
    f.seek(start)
    buffer, at, offset = b"", 0, start  # buffer[at] is the byte at file offset `offset`

    def fill(needed: int) -> bool:
        """Make `needed` bytes available from `at`; False at the end of the file."""
        nonlocal buffer, at
        while len(buffer) - at < needed:
            more = f.read(max(block_bytes, needed - (len(buffer) - at)))
            if not more:
                return False
            buffer, at = buffer[at:] + more, 0
        return True

    # The loop runs once per record: checks are inlined (a call costs as much as a CRC).
    crc32c, unpack_header, unpack_crc = google_crc32c.value, _HEADER.unpack_from, _CRC.unpack_from
    while True:
        if len(buffer) - at < HEADER_BYTES and not fill(HEADER_BYTES):
            if len(buffer) == at:
                return
            raise _corrupt(name, offset, index, f"truncated header ({len(buffer) - at} bytes)")
        length, length_crc = unpack_header(buffer, at)
        crc = crc32c(buffer[at : at + 8])
        if length_crc != (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFF_FFFF:
            raise _corrupt(name, offset, index, "length checksum mismatch")
        size = HEADER_BYTES + length + FOOTER_BYTES
        if len(buffer) - at < size and not fill(size):
            raise _corrupt(name, offset, index, f"truncated: {length} data bytes announced")
        end = at + size
        data = buffer[at + HEADER_BYTES : end - FOOTER_BYTES]
        crc = crc32c(data)
        if (
            unpack_crc(buffer, end - FOOTER_BYTES)[0]
            != (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFF_FFFF
        ):
            raise _corrupt(name, offset, index, "data checksum mismatch")
        yield Record(index, offset, offset + size, data)
        at, offset, index = end, offset + size, index + 1


def _corrupt(name: str, offset: int, index: int, what: str) -> UserError:
    return UserError(
        f"{name}: corrupted TFRecord at byte {offset} (record {index}): {what}; "
        "rerun `bert-jax prepare` into a new --output to rebuild the shards"
    )


@contextlib.contextmanager
def open_records(path: paths.PathLike, start: int = 0, index: int = 0):
    """`read_records` over the file at `path` (local or remote), closed on exit."""
    name = os.fspath(path)
    try:
        f = paths.path(path).open("rb")
    except OSError as e:
        raise UserError(paths.describe_error(name, e)) from e
    with f:
        yield read_records(f, name, start, index)
