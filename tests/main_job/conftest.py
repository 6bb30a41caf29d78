"""An environment in which no Python process can reach the network (issue 13: the demos must
run inside `docker run --network none` and on GPU machines without network).

A ``sitecustomize.py`` put first on PYTHONPATH is imported by every Python process started
with that environment (the main job, each app's console script, a ``pip`` it might start):
it makes connecting an internet socket (IPv4/IPv6) and resolving a host name fail, and writes
each attempt to a log file, so a test sees an attempt even when the code swallowed the error.
Sockets of the local machine (AF_UNIX: DataLoader workers, torch's shared memory) and
binding (Lightning's free-port probe) stay allowed. Needs no privileges, unlike
``unshare -n``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SITECUSTOMIZE = """
import os, socket, sys

_LOG = os.environ["RQ_NETWORK_LOG"]
_LOCAL = {None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0"}


def _refuse(what):
    with open(_LOG, "a") as f:
        f.write(f"{os.getpid()} {' '.join(sys.argv)[:200]}: {what}\\n")
    raise OSError(101, f"network blocked by the offline test: {what}")


def _connect(self, address, _orig=socket.socket.connect):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse(f"connect {address!r}")
    return _orig(self, address)


def _connect_ex(self, address, _orig=socket.socket.connect_ex):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse(f"connect_ex {address!r}")
    return _orig(self, address)


def _getaddrinfo(host, *args, _orig=socket.getaddrinfo, **kwargs):
    if host not in _LOCAL:
        _refuse(f"getaddrinfo {host!r}")
    return _orig(host, *args, **kwargs)


socket.socket.connect = _connect
socket.socket.connect_ex = _connect_ex
socket.getaddrinfo = _getaddrinfo
"""


@pytest.fixture
def offline_env(tmp_path) -> tuple[dict[str, str], Path]:
    """``(env, log)``: os.environ plus the network block; ``log`` lists every attempt."""
    site = tmp_path / "offline_site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "network_attempts.log"
    log.write_text("")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, RQ_NETWORK_LOG=str(log)), log
