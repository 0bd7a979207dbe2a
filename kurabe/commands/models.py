"""``kurabe models``: every model profile with its state (usable, file missing, key unset) and,
for local ones, the GGUF's quantization, layers and how many of them GPU offload would take; and
the llama.cpp engine's build (CPU features it uses, GPU offload, versions) for bug reports."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from backends.profiles import load_profiles
from backends.readiness import describe_profile
from foundation.errors import ConfigError
from foundation.options import options_from


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("models", help="list model profiles and whether each is usable")
    parser.add_argument("--models-file", metavar="FILE", help="extra model profiles (TOML)")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class ModelsOptions:
    """``kurabe models``' options."""

    models_file: str | None = None


def run(args: argparse.Namespace) -> int:
    options = options_from(ModelsOptions, args)
    try:
        profiles = load_profiles(options.models_file)
    except ConfigError as exc:
        print(f"kurabe: {exc}", file=sys.stderr)
        return 2
    from backends.llama_build import engine_build
    from backends.llama_cpp_backend import gpu_offload_supported, route_native_logs

    route_native_logs()
    offload = gpu_offload_supported()
    engine = engine_build().line()
    rows = []
    for profile in profiles.values():
        state, detail = describe_profile(profile, offload)
        rows.append(
            (
                profile.name,
                profile.backend,
                profile.prompt_format if profile.is_local else profile.model,
                state,
                detail,
                "default" if profile.default else "",
                profile.source,
            )
        )
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(
            title="model profiles (GPU offload "
            + ("available)" if offload else "not available in this build)")
        )
        for column in ("name", "backend", "format / model", "state", "detail", "", "source"):
            table.add_column(column, overflow="fold")
        for row in rows:
            style = "green" if row[3] == "usable" else "yellow"
            table.add_row(*row[:3], f"[{style}]{row[3]}[/]", *row[4:])
        table.caption = f"engine: {engine}"
        Console().print(table)
    else:
        print(f"# engine: {engine}")
        print(f"# GPU offload: {'available' if offload else 'not available'}")
        for row in rows:
            print("\t".join(row))
    return 0
