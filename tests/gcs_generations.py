"""Object generations for the GCS emulator of tests/gcs.py, as tensorstore (Orbax's array
writer) relies on them.

gcp-storage-emulator's media downloads carry no `x-goog-generation` header and ignore the
`ifGenerationMatch` / `ifGenerationNotMatch` preconditions. tensorstore's OCDBT driver reads its
manifest back under those conditions and fails with "Malformed StorageGeneration" whenever a
save commits more than once (several arrays or shards), so an Orbax save to the plain emulator
fails at random. Real GCS sends the header and honours the conditions; these wrappers add both.
"""

from __future__ import annotations

from http import HTTPStatus


def _generation(storage, bucket: str, name: str) -> str | None:
    from gcp_storage_emulator.exceptions import NotFound

    try:
        return str(storage.get_file_obj(bucket, name)["generation"])
    except NotFound:
        return None


def _precondition(query, generation: str | None) -> HTTPStatus | None:
    match = query.get("ifGenerationMatch", [None])[0]
    if match is not None and match != (generation or "0"):
        return HTTPStatus.PRECONDITION_FAILED
    not_match = query.get("ifGenerationNotMatch", [None])[0]
    if not_match is not None and generation is not None and not_match == generation:
        return HTTPStatus.NOT_MODIFIED
    return None


def _download(original):
    def download(request, response, storage, *args, **kwargs):
        bucket, name = request.params["bucket_name"], request.params["object_id"]
        generation = _generation(storage, bucket, name)
        status = _precondition(request.query, generation)
        if status is not None:
            response.status = status
            return None
        if generation is not None:
            response["x-goog-generation"] = generation
            response["x-goog-metageneration"] = "1"
        return original(request, response, storage, *args, **kwargs)

    return download


def _insert(original):
    def insert(request, response, storage, *args, **kwargs):
        name = request.query.get("name", [None])[0]
        if name is not None:
            generation = _generation(storage, request.params["bucket_name"], name)
            if _precondition(request.query, generation) is HTTPStatus.PRECONDITION_FAILED:
                response.status = HTTPStatus.PRECONDITION_FAILED
                return None
        return original(request, response, storage, *args, **kwargs)

    return insert


def with_generations(handlers):
    """The emulator's route table with downloads and uploads wrapped (see the docstring); the
    module's own `download` too, which its JSON `get` calls for `alt=media`. Called in the
    emulator's process only."""
    from gcp_storage_emulator.handlers import objects

    wrapped = {
        objects.download: _download(objects.download),
        objects.insert: _insert(objects.insert),
    }
    objects.download, objects.insert = wrapped[objects.download], wrapped[objects.insert]
    return tuple(
        (route, {method: wrapped.get(fn, fn) for method, fn in methods.items()})
        for route, methods in handlers
    )
