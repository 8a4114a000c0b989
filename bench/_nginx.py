"""nginx as the peer of the download benchmark, when it is installed.

One nginx serves two ports: an origin that sends a real file with sendfile, and a reverse proxy
in front of that origin with `proxy_buffering off` (everything else at nginx's defaults). The relay
is pointed at the same origin, so both proxies move the same bytes from the same source.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _common import HOST, free_port, stop, tool, wait_port

CONF = """\
user root;
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    types {{ video/mp4 mp4; }}
    default_type application/octet-stream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen {host}:{origin};
        root {prefix}/files;
    }}
    server {{
        listen {host}:{proxy};
        location / {{
            proxy_pass http://{host}:{origin};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
    server {{
        listen {host}:{tuned};
        location / {{
            proxy_pass http://{host}:{origin};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_buffer_size 256k;
            proxy_buffers 4 256k;
            proxy_busy_buffers_size 512k;
        }}
    }}
}}
"""


def binary() -> str | None:
    return tool("nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx")


@dataclass
class Nginx:
    origin: int
    proxy: int
    tuned: int  # the same proxy with 256 KiB buffers instead of one page
    files: Path
    version: str


@contextlib.contextmanager
def nginx(prefix: Path) -> Iterator[Nginx | None]:
    """A running nginx (origin + proxy), or None when nginx is not installed."""
    exe = binary()
    if exe is None:
        yield None
        return
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "files").mkdir(exist_ok=True)
    origin, proxy, tuned = free_port(), free_port(), free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(CONF.format(prefix=prefix, host=HOST, origin=origin, proxy=proxy, tuned=tuned))
    version = subprocess.run([exe, "-v"], capture_output=True, text=True).stderr.strip()
    proc = subprocess.Popen(
        [
            exe,
            "-p",
            str(prefix),
            "-c",
            str(conf),
            "-e",
            str(prefix / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(origin, proc=proc)
        wait_port(proxy, proc=proc)
        wait_port(tuned, proc=proc)
        yield Nginx(origin, proxy, tuned, prefix / "files", version.replace("nginx version: ", ""))
    finally:
        stop(proc, 10)
