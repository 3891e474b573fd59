"""The real app served by ``streamlit run`` on a free loopback port, for tests that talk to a live server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from analytics import config


def free_port() -> int:
    """A loopback port nobody is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_app(analytics_home: Path) -> Iterator[str]:
    """Serve app.py over ``analytics_home`` on 127.0.0.1; yield ``127.0.0.1:PORT`` once it is healthy."""
    port = free_port()
    env = {**os.environ, "ANALYTICS_HOME": str(analytics_home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(config.REPO_ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://{address}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the dashboard server did not start")
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=30)
