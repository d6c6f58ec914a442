"""The threaded HTTP server both local endpoints use (the AWS front and each Runtime API)."""

from __future__ import annotations

import logging
import sys
from http.server import ThreadingHTTPServer

log = logging.getLogger(__name__)


class QuietThreadingServer(ThreadingHTTPServer):
    """Serve each request in a daemon thread; a dropped connection is routine here, not an error."""

    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: object, client_address: object) -> None:
        """Log a dropped connection quietly (a killed runtime, an impatient client); anything else loudly."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("Connection from %s ended abruptly", client_address, exc_info=True)
        else:
            log.exception("Request from %s failed", client_address)
