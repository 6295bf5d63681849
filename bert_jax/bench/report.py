"""Shared output of every benchmark: a readable table, and with --json one JSON object last."""

from __future__ import annotations

import json
import os
import platform
import resource


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "host": platform.node()}


def emit(title: str, rows: list[tuple[str, object]], figures: dict, as_json: bool) -> None:
    """Print `rows` as a two-column table; with `as_json`, `figures` as one JSON line at the end."""
    width = max((len(k) for k, _ in rows), default=0)
    print(title)
    print("-" * max(len(title), width + 20))
    for key, value in rows:
        text = f"{value:,.2f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {text}")
    if as_json:
        print(json.dumps({"benchmark": title, **figures, "machine": machine()}, sort_keys=True))
