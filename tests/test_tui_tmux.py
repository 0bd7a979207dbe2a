"""The real ``kurabe`` command in a real terminal (tmux), on the tiny GGUF.

Starts the app in a detached tmux session of its own (a private tmux server), types a Japanese
line the way a terminal (and its IME) delivers it, waits for both panes to answer, and checks the
screen: the line is shown, no traceback, no llama.cpp log line leaked onto the terminal. Then
quits with Ctrl+Q and checks the database.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kurabe.store.store import Store

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None,
    reason="tmux is not installed (.ci/run installs the Debian package where it is missing)",
)

LLAMA_LOG = re.compile(r"llama_model_load|llm_load|ggml_|llama_context|load_tensors|llama_kv")
LINE = "ねえ、アニメ好きなの？"


class Tmux:
    def __init__(self, socket: str, session: str) -> None:
        self.socket = socket
        self.session = session

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            check=check,
            capture_output=True,
            text=True,
            timeout=20,
        )

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session).stdout

    def send(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        screen = self.screen()
        while not predicate(screen):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; the screen shows:\n{screen}")
            time.sleep(0.25)
            screen = self.screen()
        return screen


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    terminal = Tmux(f"kurabe-test-{os.getpid()}-{tmp_path.name}", "kurabe")
    yield terminal
    terminal.run("kill-server", check=False)


def kurabe_command() -> list[str]:
    script = Path(sys.executable).with_name("kurabe")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "kurabe.cli"]


def test_kurabe_in_a_real_terminal_on_the_tiny_gguf(
    tmux: Tmux, tiny_gguf: Path, tmp_path: Path, kurabe_home: Path
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        "[models.tiny]\n"
        'backend = "llama_cpp"\n'
        f"model = {str(tiny_gguf)!r}\n"
        'prompt_format = "gguf"\n'
        "n_ctx = 2048\n"  # the persona with its example exchanges, in byte tokens
        "n_gpu_layers = 0\n"
        "[models.tiny.sampling]\n"
        "max_tokens = 24\n"
        "seed = 1\n",
        encoding="utf-8",
    )
    db = tmp_path / "kurabe.sqlite3"
    argv = [*kurabe_command(), "--models", "tiny,tiny", "--models-file", str(models)]
    argv += ["--db", str(db)]
    command = (
        f"env KURABE_HOME={shlex.quote(str(kurabe_home))} TERM=xterm-256color LANG=C.UTF-8 "
        f"{shlex.join(argv)}; echo KURABE-EXIT=$?; sleep 60"
    )
    tmux.run("new-session", "-d", "-s", tmux.session, "-x", "100", "-y", "30", command)

    screen = tmux.wait_for(lambda s: s.count("ready") >= 2 or "KURABE-EXIT" in s)
    assert "KURABE-EXIT" not in screen, screen
    assert " A  tiny" in screen and " B  tiny" in screen

    tmux.send(LINE, literal=True)
    tmux.wait_for(lambda s: LINE in s)
    tmux.send("Enter")
    # Both replies finished: their figures show ttft, and no status still says "streaming · ttft".
    screen = tmux.wait_for(
        lambda s: (s.count("ttft") >= 2 and "streaming" not in s) or "✗" in s or "KURABE-EXIT" in s,
        timeout=90,
    )
    assert f"› {LINE}" in screen
    assert screen.count("ttft") >= 2, screen
    assert "Traceback" not in screen
    leaked = [line for line in screen.splitlines() if LLAMA_LOG.search(line)]
    assert not leaked, f"llama.cpp log lines on screen: {leaked}"

    tmux.send("C-q")
    screen = tmux.wait_for(lambda s: "KURABE-EXIT" in s, timeout=20)
    assert "KURABE-EXIT=0" in screen, screen
    assert "Traceback" not in screen

    store = Store(db)
    try:
        session_id = store.sessions.latest_id()
        assert session_id is not None
        assert [turn.text for turn in store.replies.turns(session_id)] == [LINE]
        replies = store.replies.replies(session_id)
        assert len(replies) == 2
        assert {reply.status for reply in replies} == {"complete"}
    finally:
        store.close()
