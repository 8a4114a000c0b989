"""nginx as the peer of the download and status benchmarks, when it is installed.

One nginx (`worker_processes auto`) serves four ports:

- `origin`: the files in `files/` with sendfile (no access log: it plays the upstream). A file
  under `files/v1/` is answered as `application/json`, so the status benchmark can put the
  relay's own answer for `/v1/videos/{id}` there.
- `proxy`: a reverse proxy of the origin with `proxy_buffering off`, otherwise nginx's defaults
  (`proxy_buffer_size` one page): the download benchmark's peer.
- `tuned`: the same with 256 KiB buffers (reference).
- `peer`: the tuned proxy of issue 10, the peer of status reads and of downloads:
  `proxy_buffering on`, `proxy_buffer_size 128k`, `proxy_buffers 4 128k`, keep-alive
  connections to the origin, and an access log (one line per request, to a file, like the
  relay's).

The relay is pointed at the same origin, so every proxy moves the same bytes from the same
source.
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
    upstream origin {{
        server {host}:{origin};
        keepalive 64;
    }}
    server {{
        listen {host}:{origin};
        root {prefix}/files;
        location /v1/ {{ default_type application/json; }}
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
    server {{
        listen {host}:{peer};
        access_log {prefix}/access.log;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
            proxy_buffer_size 128k;
            proxy_buffers 4 128k;
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
    peer: int  # buffering on, 128 KiB buffers, keep-alive upstream, access log on
    files: Path
    version: str
    pid: int  # the master; its workers are its children


@contextlib.contextmanager
def nginx(prefix: Path) -> Iterator[Nginx | None]:
    """A running nginx (origin and its proxies), or None when nginx is not installed."""
    exe = binary()
    if exe is None:
        yield None
        return
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "files").mkdir(exist_ok=True)
    origin, proxy, tuned, peer = free_port(), free_port(), free_port(), free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        CONF.format(prefix=prefix, host=HOST, origin=origin, proxy=proxy, tuned=tuned, peer=peer)
    )
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
        wait_port(peer, proc=proc)
        yield Nginx(
            origin,
            proxy,
            tuned,
            peer,
            prefix / "files",
            version.replace("nginx version: ", ""),
            proc.pid,
        )
    finally:
        stop(proc, 10)
