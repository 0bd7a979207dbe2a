"""Every model a command can name by a profile name: the profiles (built-in, ``models.toml``,
``--models-file``) and the GGUF files in the model folders, which ``--models-dir DIR``
(repeatable) and ``models_dirs`` in ``config.toml`` name::

    models_dirs = ["~/models", "/mnt/big/gguf"]   # relative paths: from the config folder

A folder's files are described from their GGUF metadata alone (never loaded); each becomes a
profile named by its file name unless a profile already has that name
(:mod:`backends.model_specs`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from backends.model_specs import FolderModel, scan_model_dirs, with_folder_models
from backends.profiles import ModelProfile, load_profiles
from kurabe.core.rating_config import config_file


def configured_model_dirs(path: Path | str | None = None) -> list[Path]:
    """``models_dirs`` in ``config.toml`` (missing file or key: none)."""
    from foundation.tomlfile import TomlDocument

    file = Path(path) if path is not None else config_file()
    if not file.exists():
        return []
    doc = TomlDocument.load(file)
    names = doc.take_list(doc.data, (), "models_dirs", str, non_empty_items=True)
    return [file.parent / os.path.expanduser(name) for name in names]


def model_dirs(given: Sequence[str] | None = None) -> list[Path]:
    """The model folders to scan: ``--models-dir`` ones first, then config.toml's."""
    dirs = [Path(os.path.expanduser(name)) for name in given or ()]
    return dirs + [d for d in configured_model_dirs() if d not in dirs]


@dataclass
class ModelCatalog:
    """The profiles a command may name, with the folder models among them."""

    profiles: dict[str, ModelProfile]
    folder_models: list[FolderModel] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """What a folder scan skipped, one line each."""


def load_model_catalog(
    models_file: Path | str | None = None, models_dirs: Sequence[str] | None = None
) -> ModelCatalog:
    """Profiles (built-in, models.toml, ``models_file``), then the model folders' files."""
    profiles = load_profiles(models_file)
    folder_models, problems = scan_model_dirs(model_dirs(models_dirs))
    return ModelCatalog(with_folder_models(profiles, folder_models), folder_models, problems)
