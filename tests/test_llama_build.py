"""The engine's build and its first-use check: portable flags, a crash becomes one line."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from backends import llama_build
from backends.base import ChatMessage, Conversation, StreamError
from backends.llama_build import (
    EngineCrashError,
    describe_exit,
    effective_cmake_args,
    ensure_engine_works,
    is_native,
    run_probe,
    wheel_cache_dir,
)

SIGILL_CHILD = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]


def test_the_build_is_portable_unless_the_user_asks_otherwise() -> None:
    args = effective_cmake_args("")
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX2=ON" in args
    assert not is_native(args)
    native = effective_cmake_args("-DGGML_NATIVE=ON")
    assert native.endswith("-DGGML_NATIVE=ON")  # the user's flags come last, so they win
    assert is_native(native)
    cuda = effective_cmake_args("-DGGML_CUDA=on")
    assert "-DGGML_NATIVE=OFF" in cuda and cuda.endswith("-DGGML_CUDA=on")


def test_builds_with_other_flags_never_share_a_cached_wheel() -> None:
    portable = wheel_cache_dir("0.3.36", effective_cmake_args(""))
    assert portable == wheel_cache_dir("0.3.36", effective_cmake_args(""))
    assert portable != wheel_cache_dir("0.3.36", effective_cmake_args("-DGGML_NATIVE=ON"))
    assert portable != wheel_cache_dir("0.3.37", effective_cmake_args(""))


def test_the_pinned_version_is_the_one_installed() -> None:
    import llama_cpp

    assert llama_build.pinned_version() == llama_cpp.__version__


def test_a_crash_by_signal_is_one_line_with_the_cpu_and_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        llama_build, "cpu_flags", lambda: frozenset({"avx2", "fma", "amx_tile", "amx_int8"})
    )
    result = run_probe(Path("model.gguf"), command=SIGILL_CHILD)
    assert not result.ok
    assert result.returncode == -signal.SIGILL
    assert result.line.startswith("llama.cpp crashed in its first use (SIGILL, illegal instruction")
    assert "CPU: AVX2 FMA AMX_TILE AMX_INT8" in result.line
    assert result.line.endswith("rebuild portably: make clean && make setup")
    assert "\n" not in result.line
    # Without AVX2 the portable build is not enough: the fix names the flags that are.
    monkeypatch.setattr(llama_build, "cpu_flags", lambda: frozenset({"sse4_2"}))
    assert "-DGGML_AVX2=OFF" in describe_exit(-signal.SIGILL).line


def test_the_engine_check_remembers_a_crash_and_the_pane_shows_one_line(
    monkeypatch: pytest.MonkeyPatch, tiny_gguf: Path
) -> None:
    calls: list[Path] = []

    def crashing_probe(model: Path, command: list[str] | None = None) -> llama_build.ProbeResult:
        calls.append(model)
        return run_probe(model, command=SIGILL_CHILD)

    monkeypatch.setattr(llama_build, "run_probe", crashing_probe)
    monkeypatch.setattr(llama_build, "build_fingerprint", lambda: "test-crashing-build")
    with pytest.raises(EngineCrashError) as first:
        ensure_engine_works(tiny_gguf)
    with pytest.raises(EngineCrashError) as second:
        ensure_engine_works(tiny_gguf)
    assert len(calls) == 1  # remembered: the next start says the same line at once
    assert first.value.reason == second.value.reason

    # In a pane: the engine is never loaded in-process, the reason is one line.
    import asyncio

    from backends import llama_cpp_backend
    from backends.llama_cpp_backend import LlamaCppBackend, unload_all_models
    from tests.test_llama_backend import tiny_profile

    monkeypatch.setattr(llama_cpp_backend, "_engine_checked", False)
    backend = LlamaCppBackend(tiny_profile(tiny_gguf))

    async def first_event() -> object:
        async for event in backend.stream(Conversation("", (ChatMessage("user", "やあ"),))):
            return event
        return None

    try:
        event = asyncio.run(first_event())
    finally:
        unload_all_models()
    assert isinstance(event, StreamError)
    assert event.reason.startswith("llama.cpp crashed in its first use (SIGILL")
    assert not event.retryable
    assert backend.loaded is None


def test_a_working_engine_passes_the_probe_on_the_embedded_model() -> None:
    from backends.embedded import ensure_embedded_model

    result = run_probe(ensure_embedded_model())
    assert result.ok, result.line
    assert result.details is not None and result.details["tokens"] == llama_build.PROBE_TOKENS
