"""Read an HTTP/1.1 request body, whether sized by ``Content-Length`` or sent in chunks."""

from __future__ import annotations

from email.message import Message
from typing import BinaryIO


def read_request_body(headers: Message, stream: BinaryIO) -> bytes:
    """Return the whole body of the request whose headers were just read from ``stream``."""
    length = headers.get("Content-Length")
    if length:
        return stream.read(int(length))
    if (headers.get("Transfer-Encoding") or "").lower() == "chunked":
        return _read_chunked(stream)
    return b""


def _read_chunked(stream: BinaryIO) -> bytes:
    chunks = []
    while True:
        size_line = stream.readline()
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # Skip trailers up to the blank line that ends the body.
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        chunks.append(stream.read(size))
        stream.readline()
