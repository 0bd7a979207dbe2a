"""``kurabe models`` and ``kurabe prompt`` (the prompt preview) on the built-in profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.llama_cpp_backend import unload_all_models
from backends.profiles import BUILTIN_PROFILES
from kurabe.cli import main

ANIME_FAN = "あなたは大のアニメファンで、友達と会話しています。 返信は短くカジュアルなものにする必要があります。"


def test_models_lists_every_profile_with_its_state(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-shown")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("\t")[0]: line.split("\t") for line in out.splitlines() if "\t" in line}
    assert set(rows) == {p.name for p in BUILTIN_PROFILES}
    assert rows["gpt-4.1-mini"][3] == "key unset"
    assert "OPENAI_API_KEY" in rows["gpt-4.1-mini"][4]
    assert rows["claude-sonnet-4-6"][3] == "usable"
    assert rows["gemma-270m"][3] == "usable"
    assert "sk-ant-test-not-shown" not in out
    engine, offload = out.splitlines()[:2]
    assert offload.startswith("# GPU offload: ")
    # The engine's build, for bug reports: versions, what the CPU backend was built for.
    assert engine.startswith("# engine: llama-cpp-python 0.3.36 (ggml ")
    assert "built for " in engine and "AVX2" in engine and "this CPU: " in engine


def test_models_reports_a_missing_gguf_and_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        '[models.elyza]\nbackend = "llama_cpp"\nmodel = "/nowhere/elyza-q6_K.gguf"\n',
        encoding="utf-8",
    )
    assert main(["models", "--models-file", str(models)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("elyza\t"))
    assert line.split("\t")[3:5] == ["file missing", "/nowhere/elyza-q6_K.gguf"]
    models.write_text('[models.elyza]\nbackend = "llama_cpp"\nmdoel = "x"\n', encoding="utf-8")
    assert main(["models", "--models-file", str(models)]) == 2
    assert f"{models}:3: models.elyza.mdoel: unknown key" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    "profile", [p for p in BUILTIN_PROFILES if p.is_local], ids=lambda p: p.name
)
@pytest.mark.parametrize("persona_id", ["anime-fan", "voice-assistant"])
def test_the_persona_reaches_the_prompt_of_every_local_builtin(
    profile: object, persona_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from personas.loader import load_personas

    persona = load_personas().get(persona_id)
    try:
        assert (
            main(
                [
                    "prompt",
                    "--model",
                    profile.name,
                    "--persona",
                    persona_id,  # type: ignore[attr-defined]
                    "--user",
                    "ねえ、アニメ好きなの？",
                ]
            )
            == 0
        )
    finally:
        unload_all_models()
    out = capsys.readouterr().out
    assert persona.system in out
    assert "ねえ、アニメ好きなの？" in out


def test_prompt_refuses_api_models_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompt", "--model", "gpt-4.1-mini"]) == 2
    assert "API model" in capsys.readouterr().err


def test_prompt_of_a_llama2_profile_is_the_seed_format(
    tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        f'[models.tiny]\nbackend = "llama_cpp"\nmodel = "{tiny_gguf}"\nprompt_format = "llama2-sys"\n'
        # The seed's ELYZA section gave no example exchanges: the persona's are left out.
        'examples_as = "none"\n',
        encoding="utf-8",
    )
    try:
        code = main(
            [
                "prompt",
                "--model",
                "tiny",
                "--models-file",
                str(models),
                "--user",
                "ねえ、アニメ好きなの？",
            ]
        )
    finally:
        unload_all_models()
    assert code == 0
    assert capsys.readouterr().out == (
        f"<<SYS>>\n{ANIME_FAN}\n<</SYS>>\n\nユーザー: ねえ、アニメ好きなの？\nオタク:\n"
    )
