"""Turn an execution environment's output pipe into timestamped lines, as Lambda's log collector does.

Each ``\\n``-terminated line becomes one event, stamped with the time it was read. A ``\\r`` does not end a line:
the Python runtime writes its unhandled-error report as one line whose traceback lines are joined by ``\\r``, and
Lambda stores it as one event. ``drain`` lets the caller collect everything written so far before it writes END,
so no line of an invocation lands after its END.
"""

from __future__ import annotations

import os
import selectors
import threading
import time
from collections.abc import Callable

LineSink = Callable[[str, float], None]

_CHUNK = 65536


class PipeLineReader:
    """Read a non-blocking pipe from a background thread and hand each complete line to ``sink``.

    :param sink: called with ``(line_without_newline, time_read)`` for each line, in order.
    """

    def __init__(self, fd: int, sink: LineSink, *, name: str, clock: Callable[[], float] = time.time) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._sink = sink
        self._clock = clock
        self._lock = threading.Lock()
        self._partial = b""
        self._eof = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def drain(self) -> None:
        """Deliver every byte written to the pipe so far, including an unfinished last line."""
        with self._lock:
            self._read_available()
            self._flush_partial()

    def wait_closed(self, timeout: float) -> bool:
        """Wait until the writer side is closed and everything was delivered; return False on timeout."""
        if not self._eof.wait(timeout):
            return False
        self._thread.join(timeout)
        return True

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._fd, selectors.EVENT_READ)
            while not self._eof.is_set():
                if not selector.select(timeout=0.5):
                    continue
                with self._lock:
                    self._read_available()
        try:
            os.close(self._fd)
        except OSError:
            pass

    def _read_available(self) -> None:
        """Read until the pipe is empty (caller holds the lock)."""
        if self._eof.is_set():
            return
        while True:
            try:
                chunk = os.read(self._fd, _CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._flush_partial()
                self._eof.set()
                return
            now = self._clock()
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                self._sink(line.decode("utf-8", errors="replace"), now)

    def _flush_partial(self) -> None:
        if self._partial:
            line, self._partial = self._partial, b""
            self._sink(line.decode("utf-8", errors="replace"), self._clock())
