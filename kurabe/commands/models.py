"""``kurabe models``: every model profile with its state (usable, file missing, key unset) and,
for local ones, the GGUF's quantization, layers and how many of them GPU offload would take; the
GGUF files in the model folders (``--models-dir``, ``models_dirs`` in config.toml) with their
size, quantization and the chat template they carry, read from their metadata (nothing is
loaded); and the llama.cpp engine's build (CPU features it uses, GPU offload, versions) for bug
reports.

``kurabe models add SPEC [--name NAME]`` writes the profile a model spec resolves to (a GGUF
path, ``openai:MODEL``, a server URL …; :mod:`backends.model_specs`) into ``models.toml`` in the
config directory, under a comment saying where it came from; an existing name is never
overwritten.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from foundation.errors import ConfigError, KurabeError
from foundation.options import options_from


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list model profiles and model folders; add a model to models.toml",
        description="List model profiles and the GGUF files in model folders, or "
        "`kurabe models add SPEC [--name NAME]` to save a model as a profile in models.toml.",
    )
    parser.add_argument("action", nargs="?", choices=("add",), help="add: save SPEC as a profile")
    parser.add_argument(
        "spec",
        nargs="?",
        metavar="SPEC",
        help="for add: a .gguf path, openai:MODEL, anthropic:MODEL or a server URL[#MODEL]",
    )
    parser.add_argument("--name", metavar="NAME", help="for add: the profile's name")
    parser.add_argument("--models-file", metavar="FILE", help="extra model profiles (TOML)")
    parser.add_argument(
        "--models-dir", metavar="DIR", action="append", help="a folder of GGUF files to list"
    )
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class ModelsOptions:
    """``kurabe models``' options."""

    action: str | None = None
    spec: str | None = None
    name: str | None = None
    models_file: str | None = None
    models_dir: Sequence[str] | None = None


def run(args: argparse.Namespace) -> int:
    options = options_from(ModelsOptions, args)
    if options.action == "add":
        return add_model(options)
    if options.spec is not None or options.name is not None:
        raise KurabeError("SPEC and --name go with `kurabe models add SPEC [--name NAME]`")
    from kurabe.core.model_catalog import load_model_catalog

    try:
        catalog = load_model_catalog(options.models_file, options.models_dir or ())
    except ConfigError as exc:
        print(f"kurabe: {exc}", file=sys.stderr)
        return 2
    from backends.llama_build import engine_build
    from backends.llama_cpp_backend import gpu_offload_supported, route_native_logs
    from backends.model_specs import human_size, shown_path
    from backends.readiness import describe_profile

    route_native_logs()
    offload = gpu_offload_supported()
    engine = engine_build().line()
    from_folders = [entry.profile() for entry in catalog.folder_models]
    rows = []
    for profile in catalog.profiles.values():
        if profile in from_folders:
            continue  # listed below, with what its metadata says
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
    files = [
        (
            entry.name,
            human_size(entry.size),
            entry.quantization,
            entry.template,
            entry.architecture,
            shown_path(entry.folder),
        )
        for entry in catalog.folder_models
    ]
    for problem in catalog.problems:
        print(f"kurabe: {problem}", file=sys.stderr)
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
        console = Console()
        console.print(table)
        if files:
            folder_table = Table(title="GGUF files in model folders (metadata only, not loaded)")
            for column in ("name", "size", "quantization", "template", "architecture", "folder"):
                folder_table.add_column(column, overflow="fold")
            for file_row in files:
                folder_table.add_row(*file_row)
            console.print(folder_table)
    else:
        print(f"# engine: {engine}")
        print(f"# GPU offload: {'available' if offload else 'not available'}")
        for row in rows:
            print("\t".join(row))
        if files:
            print("# GGUF files in model folders (metadata only, not loaded):")
            for file_row in files:
                print("\t".join(file_row))
    return 0


def add_model(options: ModelsOptions) -> int:
    """``kurabe models add SPEC [--name NAME]``: append the spec's profile to models.toml."""
    import datetime

    from backends.api_errors import scrub_urls
    from backends.model_specs import (
        SPEC_FORMS,
        default_profile_name,
        profile_toml,
        resolve_spec,
    )
    from backends.profiles import load_profiles, parse_models_file, user_models_file
    from kurabe.core.model_catalog import load_model_catalog

    if not options.spec:
        raise KurabeError(f"kurabe models add needs a SPEC: {SPEC_FORMS}")
    spec = options.spec.strip()
    named = load_profiles(options.models_file)
    if spec in named:
        raise KurabeError(f"{spec!r} is already a profile ({named[spec].source})")
    catalog = load_model_catalog(options.models_file, options.models_dir or ())
    profile = resolve_spec(spec, catalog.profiles)
    if profile is None:
        raise KurabeError(f"{spec!r} is no model spec: give {SPEC_FORMS}")
    name = (options.name or default_profile_name(profile)).strip()
    if not name or "\n" in name:
        raise KurabeError("--name must be a non-empty line")
    if name in named:
        raise KurabeError(
            f"a profile named {name!r} already exists ({named[name].source}); "
            "choose another with --name NAME"
        )
    file = user_models_file()
    before = file.read_text(encoding="utf-8") if file.exists() else ""
    today = datetime.date.today().isoformat()
    shown = scrub_urls(spec)
    origin = f"from {shown} (kurabe models add, {today})"
    if profile.is_local:
        origin = f"from {shown}, {profile.model} (kurabe models add, {today})"
    block = profile_toml(profile, name, origin)
    separator = "\n" if before.endswith("\n") else ("\n\n" if before else "")
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(before + separator + block, encoding="utf-8")
    try:
        parse_models_file(file)
    except ConfigError:
        file.write_text(before, encoding="utf-8")
        raise
    print(f"added profile {name!r} to {file} ({profile.backend}: {scrub_urls(profile.model)})")
    print(f"use it: kurabe --models {name}")
    return 0
