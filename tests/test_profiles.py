"""Model profiles: built-ins, the user's models.toml, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.profiles import BUILTIN_PROFILES, load_profiles, parse_models_file
from foundation.errors import ConfigError

GOOD = """\
[models.elyza-7b]
backend = "llama_cpp"
model = "~/models/ELYZA-japanese-Llama-2-7b-fast-instruct-q6_K.gguf"
prompt_format = "llama2-sys"
n_gpu_layers = -1

[models.elyza-7b.sampling]
temperature = 0.7
repeat_penalty = 1.18
repeat_last_n = 256
top_k = 40
top_p = 0.95
stop = ["\\nユーザー:"]

[models.vllm-swallow]
backend = "openai"
model = "tokyotech-llm/Llama-3.1-Swallow-70B-Instruct-v0.3"
base_url = "http://127.0.0.1:8000/v1"
api_key_env = "VLLM_API_KEY"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_parses(tmp_path: Path) -> None:
    profiles = {p.name: p for p in parse_models_file(write(tmp_path, GOOD))}
    elyza = profiles["elyza-7b"]
    assert elyza.prompt_format == "llama2-sys"
    assert elyza.sampling.stop == ("\nユーザー:",)
    assert (
        elyza.model_path == Path.home() / "models/ELYZA-japanese-Llama-2-7b-fast-instruct-q6_K.gguf"
    )
    swallow = profiles["vllm-swallow"]
    assert swallow.api_key_env == "VLLM_API_KEY"
    assert (
        swallow.missing_key_reason() == "API key missing: set the environment variable VLLM_API_KEY"
    )


def test_user_models_file_overrides_builtins_by_name(kurabe_home: Path) -> None:
    config = kurabe_home / "config"
    config.mkdir(parents=True)
    (config / "models.toml").write_text(
        '[models.gemma-270m]\nbackend = "llama_cpp"\nmodel = "/srv/gemma.gguf"\n', encoding="utf-8"
    )
    profiles = load_profiles()
    assert profiles["gemma-270m"].model == "/srv/gemma.gguf"
    assert profiles["gemma-270m"].source.endswith("models.toml")
    assert "gemma-270m-llama2" in profiles


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        (
            GOOD.replace("temperature = 0.7", "temprature = 0.7"),
            8,
            "models.elyza-7b.sampling.temprature",
            "did you mean 'temperature'",
        ),
        (
            GOOD.replace('backend = "openai"', 'backend = "gpt"'),
            16,
            "models.vllm-swallow.backend",
            "must be one of",
        ),
        (
            GOOD.replace("n_gpu_layers = -1", 'n_gpu_layers = "all"'),
            5,
            "models.elyza-7b.n_gpu_layers",
            "expected an integer",
        ),
        (
            GOOD.replace("top_p = 0.95", "top_p = 1.5"),
            12,
            "models.elyza-7b.sampling.top_p",
            "top_p must be in",
        ),
        (
            GOOD.replace('model = "tokyotech', 'modle = "tokyotech'),
            17,
            "models.vllm-swallow.modle",
            "unknown key",
        ),
        (
            GOOD.replace("temperature = 0.7", "temperature = "),
            8,
            "models.elyza-7b.sampling.temperature",
            "TOML syntax error",
        ),
        (
            GOOD.replace('"http://127.0.0.1:8000/v1"', '"127.0.0.1:8000"'),
            18,
            "models.vllm-swallow.base_url",
            "http:// or https://",
        ),
    ],
)
def test_errors_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        parse_models_file(path)
    error = caught.value
    assert error.path == path
    assert error.line == line
    assert error.key == key
    assert message in str(error)
    assert str(error).startswith(f"{path}:{line}: {key}: ")


CLAUDE = """\
[models.claude-t07]
backend = "anthropic"
model = "claude-sonnet-4-6"
api_key_env = "ANTHROPIC_API_KEY"
send_sampling = ["temperature", "top_k"]
"""


def test_send_sampling_parses_for_anthropic_profiles(tmp_path: Path) -> None:
    [claude] = parse_models_file(write(tmp_path, CLAUDE))
    assert claude.send_sampling == ("temperature", "top_k")
    [default] = parse_models_file(write(tmp_path, CLAUDE.replace("send_sampling", "# ")))
    assert default.send_sampling is None


@pytest.mark.parametrize(
    ("replace", "key", "message"),
    [
        ('["temperature", "top_k"]', "models.claude-t07.send_sampling[1]", "must be one of"),
        ('["temperature", "temperature"]', "models.claude-t07.send_sampling[1]", "listed twice"),
        ('"temperature"', "models.claude-t07.send_sampling", "expected"),
        ('"anthropic"', "models.claude-t07.send_sampling", "only anthropic profiles"),
    ],
)
def test_send_sampling_errors_name_the_key(
    tmp_path: Path, replace: str, key: str, message: str
) -> None:
    text = CLAUDE
    if replace == '"anthropic"':
        text = text.replace('backend = "anthropic"', 'backend = "openai"')
    elif replace == '["temperature", "top_k"]':
        text = text.replace('"top_k"', '"min_p"')
    else:
        text = text.replace('["temperature", "top_k"]', replace)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        parse_models_file(path)
    assert caught.value.key == key
    assert caught.value.line == 5
    assert message in str(caught.value)


def test_missing_model_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[models.x]\nbackend = "openai"\n')
    with pytest.raises(ConfigError, match=r"models\.x\.model: required key missing") as caught:
        parse_models_file(path)
    assert caught.value.line == 1


def test_no_builtin_profile_holds_a_key() -> None:
    for profile in BUILTIN_PROFILES:
        assert profile.api_key_env in (None, "OPENAI_API_KEY", "ANTHROPIC_API_KEY")
        assert all(
            "sk-" not in str(getattr(profile, field))
            for field in ("model", "base_url", "description")
        )


def test_api_keys_are_read_from_the_environment_at_use(monkeypatch: pytest.MonkeyPatch) -> None:
    gpt = next(p for p in BUILTIN_PROFILES if p.backend == "openai" and p.api_key_env)
    assert gpt.api_key() is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    assert gpt.api_key() == "sk-test-123"
    assert gpt.missing_key_reason() is None
