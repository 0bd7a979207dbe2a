"""What the portable llama.cpp build costs: llama-bench, portable build against native, one run.

kurabe builds llama.cpp with ``GGML_NATIVE=OFF`` and AVX2/FMA/F16C/BMI2 (backends/llama_build.py
says why: a native build crashed on this project's machines). This script measures the price on
the embedded Gemma 3 270M Q4_K_M with llama.cpp's own ``llama-bench``, both builds from the same
source, interleaved run by run: text generation (tg128) and prompt processing (pp512).

Target: the portable build's generation speed ≥ 0.90 × the native build's on this machine.
Builds: ``make llama-tools`` and ``make llama-tools LLAMA_TOOLS_ARGS=--native`` (about 5 minutes
each on 2 cores); a missing one is named, and the script exits 2 without a figure.

Usage: python bench/bench_build.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.embedded import ensure_embedded_model
from backends.llama_build import cpu_summary, find_tool
from backends.llama_cpp_backend import default_threads

TARGET = 0.90


def llama_bench(binary: Path, model: Path) -> dict[str, float]:
    """tokens/s of one llama-bench run: {"tg128": …, "pp512": …}."""
    result = subprocess.run(
        [
            str(binary), "-m", str(model), "-t", str(default_threads()), "-p", "512",
            "-n", "128", "-r", "2", "-o", "json",
        ],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    rates = {}
    for test in json.loads(result.stdout):
        name = f"pp{test['n_prompt']}" if test["n_gen"] == 0 else f"tg{test['n_gen']}"
        rates[name] = float(test["avg_ts"])
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    builds = {"portable": find_tool("llama-bench"), "native": find_tool("llama-bench", True)}
    missing = [name for name, path in builds.items() if path is None]
    if missing:
        for name in missing:
            flag = " LLAMA_TOOLS_ARGS=--native" if name == "native" else ""
            print(f"skipped: the {name} llama-bench is not built (make llama-tools{flag})")
        return 2
    model = ensure_embedded_model()
    print(f"model: {model.name} · threads: {default_threads()} · CPU: {cpu_summary()}")
    runs: dict[str, dict[str, list[float]]] = {name: {} for name in builds}
    for _ in range(args.repeats):
        for name, binary in builds.items():
            assert binary is not None
            for test, rate in llama_bench(binary, model).items():
                runs[name].setdefault(test, []).append(rate)
    ok = True
    for test in ("tg128", "pp512"):
        portable = statistics.median(runs["portable"][test])
        native = statistics.median(runs["native"][test])
        ratio = portable / native
        print(f"{test}: portable {portable:7.1f} tok/s · native {native:7.1f} tok/s · {ratio:.3f}")
        if test == "tg128":
            met = ratio >= TARGET
            ok = ok and met
            print(f"  → portable/native generation: {ratio:.3f} (target ≥ {TARGET}) "
                  f"{'OK' if met else 'MISSED'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
