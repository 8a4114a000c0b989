"""A fast origin for the download benchmarks: generated pattern bytes over plain HTTP/1.1.

`GET /blob/<size>` answers `<size>` bytes of the pattern in bench/_common.py (never held whole in
memory: each send is a slice of a two-period buffer), with Content-Length, `Range: bytes=a-b`
(206 + Content-Range), HEAD and keep-alive. One thread per connection, blocking `sendall` of up
to a megabyte at a time, so the kernel does the copying and this process is not the bottleneck.

    python bench/byteserver.py --port 9000
"""

from __future__ import annotations

import argparse
import re
import socket
import socketserver

from _common import HOST, PERIOD, TILED

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
_BLOB = re.compile(r"^/blob/(\d+)(?:\.mp4)?(?:\?.*)?$")


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _send_pattern(sock: socket.socket, start: int, length: int) -> None:
    view = memoryview(TILED)
    offset, left = start, length
    while left:
        at = offset % PERIOD
        take = min(left, PERIOD)
        sock.sendall(view[at : at + take])
        offset += take
        left -= take


def _answer(method: str, target: str, headers: dict[str, str]) -> tuple[bytes, int, int]:
    """(head, body start, body length) for one request."""
    match = _BLOB.match(target)
    if method not in ("GET", "HEAD") or not match:
        return _head("404 Not Found", {"Content-Length": "0"}), 0, 0
    size = int(match.group(1))
    base = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "ETag": f'"blob-{size}"'}
    rng = _RANGE.match(headers.get("range", "").replace(" ", ""))
    if rng and (rng.group(1) or rng.group(2)):
        first, last = rng.groups()
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:
            start, end = max(0, size - int(last)), size - 1
        if start >= size or end < start:
            return (
                _head(
                    "416 Range Not Satisfiable",
                    {"Content-Range": f"bytes */{size}", "Content-Length": "0"},
                ),
                0,
                0,
            )
        length = end - start + 1
        head = _head(
            "206 Partial Content",
            {**base, "Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(length)},
        )
        return head, start, length if method == "GET" else 0
    return _head("200 OK", {**base, "Content-Length": str(size)}), 0, size if method == "GET" else 0


class Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        while True:
            while b"\r\n\r\n" not in pending:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                pending += chunk
            raw, pending = pending.split(b"\r\n\r\n", 1)
            lines = raw.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            head, start, length = _answer(method, target, headers)
            try:
                sock.sendall(head)
                _send_pattern(sock, start, length)
            except OSError:  # the client went away mid-body: that is its right
                return
            if headers.get("connection", "").lower() == "close":
                return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with Server((HOST, args.port), Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
