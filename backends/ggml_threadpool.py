"""A persistent ggml CPU threadpool for a llama.cpp context, as llama.cpp's own tools attach one.

Without one, llama.cpp makes a throwaway threadpool for every graph it computes: for each token
of a reply the worker threads are started, synchronised once and joined again. llama-server,
llama-cli and llama-bench instead create one pool per context (``common_threadpools::init``),
whose workers stay alive and poll briefly for the next graph before they sleep, and attach it
with ``llama_attach_threadpool``. llama-cpp-python does not bind that call, so this module does,
through ctypes on the library it already loaded, the way ``common.cpp`` does: the pool's
constructor and destructor are looked up in the CPU backend's registry (which also finds them in
a build with dynamically loaded backends), the parameters come from
``ggml_threadpool_params_init`` (llama.cpp's defaults: polling level 50, normal priority, no CPU
mask).

Where any of it is missing, :func:`attach_cpu_threadpool` returns None and the context keeps
llama.cpp's throwaway pools: slower by a little, never wrong.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

log = logging.getLogger(__name__)

GGML_BACKEND_DEVICE_TYPE_CPU = 0
_PARAMS_BYTES = 2048
"""Room for ``struct ggml_threadpool_params`` (528 bytes with GGML_MAX_N_THREADS = 512), which
``ggml_threadpool_params_init`` fills; kurabe never reads or writes its fields itself."""

_new_type = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
_free_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class CpuThreadpool:
    """One attached pool; :meth:`close` detaches it from its context and frees it."""

    def __init__(self, lib: Any, ctx: Any, pool: int, free: Any) -> None:
        self._lib = lib
        self._ctx = ctx
        self._pool: int | None = pool
        self._free = free

    def close(self) -> None:
        """Detach and free the pool (before the context is freed; twice is harmless)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        self._lib.llama_detach_threadpool(self._ctx)
        self._free(pool)


def _functions(lib: Any) -> tuple[Any, Any] | None:
    """(ggml_threadpool_new, ggml_threadpool_free) from the CPU backend's registry."""
    dev_by_type = lib.ggml_backend_dev_by_type
    dev_by_type.restype, dev_by_type.argtypes = ctypes.c_void_p, [ctypes.c_int]
    backend_reg = lib.ggml_backend_dev_backend_reg
    backend_reg.restype, backend_reg.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    proc = lib.ggml_backend_reg_get_proc_address
    proc.restype, proc.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]
    device = dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)
    if not device:
        return None
    registry = backend_reg(device)
    if not registry:
        return None
    new = proc(registry, b"ggml_threadpool_new")
    free = proc(registry, b"ggml_threadpool_free")
    if not new or not free:
        return None
    return _new_type(new), _free_type(free)


def attach_cpu_threadpool(llama_cpp: Any, ctx: Any, n_threads: int) -> CpuThreadpool | None:
    """Create a pool of ``n_threads`` and attach it to ``ctx`` for decoding and prompt batches
    alike (kurabe gives both the same thread count, so one pool serves, as in llama.cpp)."""
    lib = getattr(getattr(llama_cpp, "llama_cpp", None), "_lib", None)
    if lib is None:
        return None
    try:
        functions = _functions(lib)
        if functions is None:
            return None
        new, free = functions
        params_init = lib.ggml_threadpool_params_init
        params_init.restype, params_init.argtypes = None, [ctypes.c_void_p, ctypes.c_int]
        attach = lib.llama_attach_threadpool
        attach.restype = None
        attach.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        detach = lib.llama_detach_threadpool
        detach.restype, detach.argtypes = None, [ctypes.c_void_p]
    except AttributeError as exc:  # a llama.cpp without these symbols
        log.info("no persistent CPU threadpool: %s", exc)
        return None
    params = ctypes.create_string_buffer(_PARAMS_BYTES)
    params_init(params, n_threads)
    pool = new(params)
    if not pool:
        log.info("no persistent CPU threadpool: ggml_threadpool_new failed (%d threads)", n_threads)
        return None
    attach(ctx, pool, None)
    return CpuThreadpool(lib, ctx, int(pool), free)
