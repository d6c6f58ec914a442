"""Small helpers the benchmark's processes share: files as a handshake, limits, memory readings."""

from __future__ import annotations

import asyncio
import json
import os
import resource
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> None:
    """Write `data` so that a reader polling for `path` never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


async def wait_for_file(path: Path, *, stop: asyncio.Event | None = None, poll: float = 0.05) -> Any:
    """Wait until `path` exists and return its JSON; ``None`` if `stop` is set first."""
    while not path.exists():
        if stop is not None and stop.is_set():
            return None
        await asyncio.sleep(poll)
    return read_json(path)


def raise_open_files_limit() -> None:
    """Allow as many sockets as the hard limit permits: a thousand clients each hold one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, 65536) if hard == resource.RLIM_INFINITY else hard
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def rss_kb() -> int:
    """Return this process's resident set size (``VmRSS``) in KiB."""
    with open("/proc/self/status") as status:
        for row in status:
            if row.startswith("VmRSS:"):
                return int(row.split()[1])
    return 0
