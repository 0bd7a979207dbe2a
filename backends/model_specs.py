"""Models named where they are used, without writing a profile first: *model specs*.

Wherever a model is named (``--models``, ``replay``, ``judge --judge``, the app's model picker) a
spec is one of:

* a **profile name** (built-in, ``models.toml``, ``--models-file``, or a GGUF file found in a
  model folder, by its file name): names are looked up first;
* a **path to a GGUF file** (``./my-model.gguf``, ``~/models/x.gguf``): its own chat template
  (``prompt_format = "gguf"``) and the default sampling; the profile's name is the path as given
  (``~`` for the home folder), so the pane's header says where it came from;
* ``openai:MODEL`` or ``anthropic:MODEL``: the provider's own API, the key from
  ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``;
* an **OpenAI-compatible server** as ``URL`` or ``URL#MODEL`` (a URL without a path means
  ``/v1``). Without ``#MODEL`` the server's ``/v1/models`` is asked: one model is used, several
  are listed in the error. With ``#MODEL`` the server is not contacted until the pane runs.

:func:`resolve_spec` turns a spec into a :class:`~backends.profiles.ModelProfile`, recorded like
any other; credentials in a URL stay in ``base_url`` (needed to connect) and never reach its name
(:func:`~backends.api_errors.public_url`). A bad spec raises :class:`ModelSpecError`, one line.

:func:`scan_model_dirs` lists the GGUF files in model folders from their metadata alone
(:func:`~backends.gguf_meta.read_gguf_metadata` reads the key/value header, never a tensor), and
:func:`profile_toml` writes a resolved profile as a ``models.toml`` block (``kurabe models add``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from backends.api_errors import public_url, scrub_urls
from backends.base import one_line
from backends.gguf_meta import GGUFMetadataError, quantization_name, read_gguf_metadata
from backends.profiles import BackendName, ModelProfile
from foundation.errors import KurabeError

PROVIDERS: dict[str, tuple[BackendName, str]] = {
    "openai": ("openai", "OPENAI_API_KEY"),
    "anthropic": ("anthropic", "ANTHROPIC_API_KEY"),
}
"""``PREFIX:MODEL`` specs: the backend and the environment variable that holds the key."""
SPEC_FORMS = "a .gguf path, openai:MODEL, anthropic:MODEL or a server URL[#MODEL]"
"""What else a model can be named by, for the 'unknown profile' messages."""
AD_HOC_SOURCE = "ad hoc"
"""The ``source`` of a profile made from a spec (``kurabe models`` shows it)."""
FOLDER_SOURCE = "folder "
"""How the ``source`` of a model folder's file begins (then the folder)."""
SERVER_TIMEOUT_S = 5.0
"""How long ``/v1/models`` may take to answer before the server counts as not answering."""

_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9_.-]+):(.*)", re.DOTALL)
"""``openai:gpt-4o``; at least two letters before the colon, so ``C:\\models`` is a path."""
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+:\d+(/\S*)?(#.*)?")
"""``localhost:8080/v1``: a server URL without its scheme."""
_SPLIT_PART = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
"""A split GGUF's part (``model-00002-of-00003.gguf``): llama.cpp loads the first part."""


class ModelSpecError(KurabeError):
    """A model spec that names nothing usable, as one line."""


ModelLister = Callable[[str, float], list[str]]
"""Asks an OpenAI-compatible server at a base URL which models it serves."""


def server_model_ids(base_url: str, timeout_s: float = SERVER_TIMEOUT_S) -> list[str]:
    """The model ids ``base_url``'s ``/models`` lists (through the openai SDK, as the pane will
    talk to it). Raises :class:`ModelSpecError` when the server does not answer or answers
    something else than a model list."""
    import openai

    from backends.api_errors import PLACEHOLDER_KEY

    shown = public_url(base_url)
    client = openai.OpenAI(
        api_key=PLACEHOLDER_KEY, base_url=base_url, timeout=timeout_s, max_retries=0
    )
    try:
        return [str(model.id) for model in client.models.list()]
    except openai.APIStatusError as exc:
        raise ModelSpecError(
            f"{shown}/models answered HTTP {exc.status_code}; name the model as {shown}#MODEL"
        ) from None
    except openai.APIConnectionError as exc:
        cause = one_line(scrub_urls(str(exc.__cause__ or exc)), 80)
        raise ModelSpecError(
            f"server {shown} does not answer ({cause}); start it, or check the URL"
        ) from None
    except (openai.OpenAIError, ValueError, TypeError, AttributeError) as exc:
        raise ModelSpecError(
            f"{shown}/models did not answer a model list ({one_line(str(exc), 60)}); "
            f"name the model as {shown}#MODEL"
        ) from None
    finally:
        client.close()


def resolve_spec(
    spec: str,
    profiles: Mapping[str, ModelProfile],
    *,
    list_models: ModelLister = server_model_ids,
) -> ModelProfile | None:
    """The profile ``spec`` names or describes; None for a plain name that is no profile (the
    caller says which profiles there are). Raises :class:`ModelSpecError` for a bad spec."""
    spec = spec.strip()
    if spec in profiles:
        return profiles[spec]
    if "://" in spec:
        return _server_profile(spec, list_models)
    prefixed = _PREFIX.fullmatch(spec)
    known_prefix = prefixed is not None and prefixed.group(1).lower() in PROVIDERS
    if not known_prefix and _HOST_PORT.fullmatch(spec):
        raise ModelSpecError(f"{spec!r}: a server URL starts with http:// (http://{spec})")
    if prefixed and (known_prefix or not _looks_like_path(spec)):
        return _provider_profile(spec, prefixed.group(1), prefixed.group(2).strip())
    if _looks_like_path(spec) or Path(os.path.expanduser(spec)).is_file():
        return gguf_profile(spec)
    return None


def resolve_specs(
    specs: Iterable[str],
    profiles: Mapping[str, ModelProfile],
    *,
    list_models: ModelLister = server_model_ids,
) -> list[tuple[str, ModelProfile | None]]:
    """Each spec with what :func:`resolve_spec` made of it."""
    return [(spec, resolve_spec(spec, profiles, list_models=list_models)) for spec in specs]


def _looks_like_path(spec: str) -> bool:
    return (
        "/" in spec or "\\" in spec or spec.startswith(("~", ".")) or spec.lower().endswith(".gguf")
    )


def shown_path(path: Path) -> str:
    """``path`` with the home folder as ``~`` (how a name or a header shows a file)."""
    home = Path.home()
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def gguf_profile(spec: str) -> ModelProfile:
    """A local profile for the GGUF file at ``spec``: its own chat template, default sampling.
    Raises :class:`ModelSpecError` when there is no file there or it is not a GGUF."""
    given = Path(os.path.expanduser(spec))
    if not given.exists():
        raise ModelSpecError(f"no such file: {spec}")
    if not given.is_file():
        raise ModelSpecError(f"not a GGUF file: {spec} is a folder")
    try:
        with given.open("rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ModelSpecError(f"not a GGUF file: {spec} (no GGUF header)")
        read_gguf_metadata(given)
    except GGUFMetadataError as exc:
        raise ModelSpecError(f"not a GGUF file: {spec} ({exc})") from None
    except OSError as exc:
        raise ModelSpecError(f"cannot read {spec}: {exc.strerror or exc}") from None
    path = given.resolve()
    name = shown_path(path) if given.is_absolute() else spec
    return ModelProfile(
        name=name,
        backend="llama_cpp",
        model=str(path),
        prompt_format="gguf",
        description=f"GGUF file {path}, with its own chat template",
        source=AD_HOC_SOURCE,
    )


def _provider_profile(spec: str, prefix: str, model: str) -> ModelProfile:
    known = ", ".join(f"{name}:MODEL" for name in PROVIDERS)
    provider = PROVIDERS.get(prefix.lower())
    if provider is None:
        raise ModelSpecError(
            f"unknown provider prefix '{prefix}:' in {spec!r}; use {known} or a server URL"
        )
    if not model:
        raise ModelSpecError(f"{spec!r} names no model: write {prefix.lower()}:MODEL")
    backend, key_env = provider
    return ModelProfile(
        name=f"{prefix.lower()}:{model}",
        backend=backend,
        model=model,
        api_key_env=key_env,
        description=f"{model} on the {prefix.lower()} API (key from {key_env})",
        source=AD_HOC_SOURCE,
    )


def server_base_url(url: str) -> str:
    """``url`` as a base URL for the OpenAI SDK: a URL without a path gets ``/v1``."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _server_profile(spec: str, list_models: ModelLister) -> ModelProfile:
    url, _, model = spec.partition("#")
    model = model.strip()
    try:
        parts = urlsplit(url)
        valid = bool(parts.hostname)
        _ = parts.port
    except ValueError:
        valid = False
    if parts.scheme.lower() not in ("http", "https"):
        raise ModelSpecError(
            f"unknown URL scheme '{parts.scheme}://' in {public_url(url)}: "
            "a server is http:// or https://"
        )
    if not valid:
        raise ModelSpecError(f"not a server URL: {public_url(url)}")
    base_url = server_base_url(url)
    shown = public_url(base_url)
    chosen_by = "given"
    if not model:
        served = list_models(base_url, SERVER_TIMEOUT_S)
        if not served:
            raise ModelSpecError(f"{shown} lists no model; name one as {shown}#MODEL")
        if len(served) > 1:
            raise ModelSpecError(
                f"{shown} serves {len(served)} models ({', '.join(served)}); "
                f"name one as {shown}#MODEL"
            )
        model = served[0]
        chosen_by = "the only one in /v1/models"
    return ModelProfile(
        name=f"{shown}#{model}",
        backend="openai",
        model=model,
        base_url=base_url,
        description=f"OpenAI-compatible server {shown}, model {model} ({chosen_by})",
        source=AD_HOC_SOURCE,
    )


# -- model folders ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FolderModel:
    """A GGUF file found in a model folder, described from its metadata (nothing loaded)."""

    path: Path
    size: int
    architecture: str
    quantization: str
    template: str
    """The chat template it carries, by family (``chatml``, ``gemma``, ``llama-3`` …),
    ``its own`` when not recognised, ``none`` when it carries none."""
    folder: Path

    @property
    def name(self) -> str:
        return self.path.name

    def profile(self) -> ModelProfile:
        """Its profile: the file's own chat template and the default sampling, named by file."""
        return ModelProfile(
            name=self.name,
            backend="llama_cpp",
            model=str(self.path),
            prompt_format="gguf",
            description=f"{self.architecture} · {self.quantization} · {human_size(self.size)}"
            f" · template: {self.template}",
            source=FOLDER_SOURCE + shown_path(self.folder),
        )


_TEMPLATE_FAMILIES: tuple[tuple[str, str], ...] = (
    ("<start_of_turn>", "gemma"),
    ("<|start_header_id|>", "llama-3"),
    ("<|im_start|>", "chatml"),
    ("[INST]", "llama-2/mistral"),
    ("<|user|>", "zephyr/phi"),
    ("<|User|>", "deepseek"),
    ("### Instruction", "alpaca"),
    ("### 指示", "alpaca-ja"),
)


def template_family(template: object) -> str:
    """Which chat template a GGUF carries, by the markers it uses."""
    if not isinstance(template, str) or not template.strip():
        return "none"
    for marker, family in _TEMPLATE_FAMILIES:
        if marker in template:
            return family
    return "its own"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - the loop returns


def describe_gguf(path: Path, folder: Path) -> FolderModel:
    """One file's entry, from its metadata header. Raises GGUFMetadataError or OSError."""
    metadata = read_gguf_metadata(path)
    return FolderModel(
        path=path,
        size=path.stat().st_size,
        architecture=str(metadata.get("general.architecture", "?")),
        quantization=quantization_name(metadata.get("general.file_type")),
        template=template_family(metadata.get("tokenizer.chat_template")),
        folder=folder,
    )


def scan_model_dirs(dirs: Sequence[Path]) -> tuple[list[FolderModel], list[str]]:
    """The GGUF files in ``dirs`` and their subfolders (first name wins), and one line per
    thing skipped: a missing folder, a file that is not a readable GGUF, a name seen before.
    Later parts of split GGUFs and vision projectors (``clip``) are left out silently."""
    found: list[FolderModel] = []
    problems: list[str] = []
    names: dict[str, Path] = {}
    for folder in dirs:
        folder = Path(os.path.expanduser(folder))
        if not folder.is_dir():
            problems.append(f"model folder not found: {folder}")
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() != ".gguf" or not path.is_file():
                continue
            part = _SPLIT_PART.search(path.name)
            if part and int(part.group(1)) != 1:
                continue
            try:
                entry = describe_gguf(path, folder)
            except (GGUFMetadataError, OSError) as exc:
                problems.append(f"skipped {path}: {exc}")
                continue
            if entry.architecture == "clip":
                continue
            if entry.name in names:
                problems.append(f"skipped {path}: {entry.name} is already {names[entry.name]}")
                continue
            names[entry.name] = path
            found.append(entry)
    return found, problems


def with_folder_models(
    profiles: Mapping[str, ModelProfile], folder_models: Iterable[FolderModel]
) -> dict[str, ModelProfile]:
    """``profiles`` plus one profile per folder model whose file name is no profile's name."""
    merged = dict(profiles)
    for entry in folder_models:
        merged.setdefault(entry.name, entry.profile())
    return merged


# -- models.toml ----------------------------------------------------------------------------------


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def default_profile_name(profile: ModelProfile) -> str:
    """What ``kurabe models add`` calls a spec's profile without ``--name``: the file's stem, or
    the model id (its last path segment)."""
    if profile.is_local:
        return Path(profile.model).stem
    return profile.model.rsplit("/", 1)[-1]


def _toml_key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def profile_toml(profile: ModelProfile, name: str, origin: str) -> str:
    """``profile`` as a ``[models.NAME]`` block, with a comment line saying ``origin``."""
    lines = [f"# {one_line(origin)}", f"[models.{_toml_key(name)}]"]
    lines.append(f"backend = {_toml_string(profile.backend)}")
    lines.append(f"model = {_toml_string(profile.model)}")
    if profile.is_local:
        lines.append(f"prompt_format = {_toml_string(profile.prompt_format)}")
    if profile.base_url:
        lines.append(f"base_url = {_toml_string(profile.base_url)}")
    if profile.api_key_env:
        lines.append(f"api_key_env = {_toml_string(profile.api_key_env)}")
    if profile.description:
        lines.append(f"description = {_toml_string(profile.description)}")
    return "\n".join(lines) + "\n"
