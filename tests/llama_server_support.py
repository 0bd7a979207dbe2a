"""The llama.cpp ``llama-server`` binary for tests: where it is, and running it on a tiny GGUF.

The binary is ``$KURABE_LLAMA_SERVER`` when that is set, else the one ``make llama-tools`` built
(:func:`backends.llama_build.find_tool`, the same lookup as the benchmarks'). Tests that need it
skip with :data:`MISSING_REASON` when neither exists: building llama-server is not part of a plain
``make test`` (``.ci/run`` builds it).

:func:`running_llama_server` starts it on 127.0.0.1 at a free port, one slot, a small context and
one thread, waits for ``/health``, yields its origin and stops it. ``/slots`` reports each slot's
sampling parameters of its last task (``temperature``, ``top_k``, ``top_p``, ``min_p``,
``n_predict`` …), which is how a test learns what really reached the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.wire_servers import free_port

ENV_VAR = "KURABE_LLAMA_SERVER"
STARTUP_TIMEOUT_S = 60.0


def llama_server_binary() -> Path | None:
    """The llama-server to use, or None when there is none."""
    from backends.llama_build import find_tool

    path = find_tool("llama-server")
    return path if path is not None and os.access(path, os.X_OK) else None


MISSING_REASON = f"llama-server not found: set {ENV_VAR} to the binary, or run make llama-tools"


def get_json(url: str, timeout_s: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.load(response)


def _healthy(origin: str) -> bool:
    try:
        with urllib.request.urlopen(f"{origin}/health", timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def _slots_flag(binary: Path) -> list[str]:
    """``--slots`` where this build has the flag (newer builds expose /slots by default)."""
    try:
        help_text = subprocess.run(
            [str(binary), "--help"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return ["--slots"] if "--slots" in help_text.replace("--no-slots", "") else []


@contextmanager
def running_llama_server(
    binary: Path,
    gguf: Path,
    log_path: Path,
    *,
    ctx_size: int = 512,
    threads: int = 1,
    alias: str = "tiny",
) -> Iterator[str]:
    """Run ``binary`` on ``gguf``; yield ``http://127.0.0.1:PORT``. Its output goes to
    ``log_path`` (shown when it fails to start). ``ctx_size``, ``threads`` and ``alias`` for
    tests that need a real model's longer prompts."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    command = [
        str(binary),
        "--model",
        str(gguf),
        "--alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ctx-size",
        str(ctx_size),
        "--parallel",
        "1",
        "--threads",
        str(threads),
        *_slots_flag(binary),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not _healthy(origin):
                if process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"llama-server exited ({process.returncode}): {tail}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"llama-server not up in {STARTUP_TIMEOUT_S:.0f} s")
                time.sleep(0.2)
            # Another test run on this machine may have taken the port between free_port() and
            # the bind: then /health answered for *its* server and ours exits (cannot bind).
            time.sleep(0.5)
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"llama-server exited ({process.returncode}) although {origin} answered: "
                    f"another server holds the port: {tail}"
                )
            yield origin
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
