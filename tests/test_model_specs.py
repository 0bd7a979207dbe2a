"""Models named without a profile: GGUF paths, ``openai:``/``anthropic:`` ids, server URLs
(against the loopback wire servers), model folders listed from metadata alone, ``kurabe models
add``, and one line with exit code 2 for every bad spec."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.model_specs import ModelSpecError, resolve_spec, scan_model_dirs
from backends.profiles import BUILTIN_PROFILES, Sampling, load_profiles, parse_models_file
from kurabe.cli import main
from kurabe.store.store import Store
from tests.wire_servers import WireServer, free_port, openai_error, openai_stream, running

PROFILES = {p.name: p for p in BUILTIN_PROFILES}


@pytest.fixture
def server() -> Iterator[WireServer]:
    with running("openai") as wire:
        yield wire


@pytest.fixture
def unload() -> Iterator[None]:
    yield
    from backends.llama_cpp_backend import unload_all_models

    unload_all_models()


def no_listing(base_url: str, timeout_s: float) -> list[str]:
    raise AssertionError("the server must not be asked")


# -- resolving ------------------------------------------------------------------------------


def test_a_profile_name_is_looked_up_first() -> None:
    assert resolve_spec("gemma-270m", PROFILES, list_models=no_listing) is PROFILES["gemma-270m"]
    assert resolve_spec("no-such-name", PROFILES, list_models=no_listing) is None


def test_provider_ids_take_the_usual_key_variables() -> None:
    openai = resolve_spec("openai:gpt-4o", PROFILES, list_models=no_listing)
    assert openai is not None
    assert (openai.name, openai.backend, openai.model) == ("openai:gpt-4o", "openai", "gpt-4o")
    assert openai.api_key_env == "OPENAI_API_KEY" and openai.base_url is None
    claude = resolve_spec("anthropic:claude-opus-4-1", PROFILES, list_models=no_listing)
    assert claude is not None and claude.backend == "anthropic"
    assert claude.api_key_env == "ANTHROPIC_API_KEY" and claude.model == "claude-opus-4-1"


def test_a_gguf_path_is_a_local_profile_named_as_given(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(tiny_gguf, tmp_path / "my-model.gguf")
    monkeypatch.chdir(tmp_path)
    profile = resolve_spec("./my-model.gguf", PROFILES, list_models=no_listing)
    assert profile is not None and profile.backend == "llama_cpp"
    assert profile.name == "./my-model.gguf"  # the pane's header: where it came from
    assert profile.model == str(tmp_path / "my-model.gguf")  # absolute: resumable elsewhere
    assert profile.prompt_format == "gguf" and profile.sampling == Sampling()


def test_a_url_with_a_model_is_not_contacted_and_its_secrets_stay_out_of_the_name() -> None:
    spec = "http://kurabe:hunter22@127.0.0.1:8080/v1?api_key=sk-secret123456#qwen"
    profile = resolve_spec(spec, PROFILES, list_models=no_listing)
    assert profile is not None and profile.model == "qwen" and profile.backend == "openai"
    assert profile.base_url == "http://kurabe:hunter22@127.0.0.1:8080/v1?api_key=sk-secret123456"
    assert "hunter22" not in profile.name and "sk-secret" not in profile.name
    assert profile.name == "http://127.0.0.1:8080/v1?api_key=***#qwen"
    assert "hunter22" not in profile.description
    bare = resolve_spec("http://127.0.0.1:8080#qwen", PROFILES, list_models=no_listing)
    assert bare is not None and bare.base_url == "http://127.0.0.1:8080/v1"


def test_a_url_without_a_model_asks_the_servers_model_list(server: WireServer) -> None:
    server.model_ids = ["qwen2.5-7b-instruct"]
    profile = resolve_spec(server.origin, PROFILES)
    assert profile is not None and profile.model == "qwen2.5-7b-instruct"
    assert profile.base_url == f"{server.origin}/v1"
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/models")]
    server.model_ids = ["qwen2.5-7b-instruct", "llm-jp-3-13b"]
    with pytest.raises(ModelSpecError, match="serves 2 models") as caught:
        resolve_spec(f"{server.origin}/v1", PROFILES)
    assert "qwen2.5-7b-instruct, llm-jp-3-13b" in str(caught.value)
    assert f"{server.origin}/v1#MODEL" in str(caught.value)
    server.model_ids = []
    with pytest.raises(ModelSpecError, match="lists no model"):
        resolve_spec(f"{server.origin}/v1", PROFILES)


# -- end to end -----------------------------------------------------------------------------


def test_own_gguf_openai_id_and_a_server_url_replayed_exported_and_resumed(
    tiny_gguf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    unload: None,
) -> None:
    shutil.copy(tiny_gguf, tmp_path / "my-model.gguf")
    monkeypatch.chdir(tmp_path)
    with running("openai") as official, running("server") as compatible:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{official.origin}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-kurabe-test-0123456789abcdef")
        official.script(openai_stream(["うん、", "好きだよ！"]))
        compatible.model_ids = ["qwen-test"]
        ok = openai_stream(["もちろん！"], model="qwen-test")
        compatible.script(ok, ok, ok, openai_error(400, "scripted failure"))
        db = tmp_path / "k.sqlite3"
        specs = f"./my-model.gguf,openai:gpt-4.1-nano,{compatible.origin}"
        code = main(
            ["replay", "seed-gpt4", "--models", specs, "--db", str(db), "--plain", "--seed", "3"]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        session_id = int(out.splitlines()[-1].split()[1])
        record = Store(db).load_record(session_id)
        names = [pane.profile_name for pane in record.panes]
        url_name = f"{compatible.origin}/v1#qwen-test"
        assert names == ["./my-model.gguf", "openai:gpt-4.1-nano", url_name]
        local, official_pane, server_pane = (pane.settings["profile"] for pane in record.panes)
        assert local["model"] == str(tmp_path / "my-model.gguf")
        assert local["prompt_format"] == "gguf" and local["source"] == "ad hoc"
        assert record.panes[0].settings["backend"]["model_file"] == "my-model.gguf"
        assert official_pane["api_key_env"] == "OPENAI_API_KEY"
        assert server_pane["base_url"] == f"{compatible.origin}/v1"
        assert server_pane["model"] == "qwen-test"
        assert official.requests[-1].body["model"] == "gpt-4.1-nano"
        assert compatible.requests[0].path == "/v1/models"
        assert compatible.requests[1].body["model"] == "qwen-test"
        failed = [r for r in record.replies if r.pane == 2 and not r.completed]
        assert len(failed) == 1  # the server's scripted failure on the last turn

        for fmt in ("md", "jsonl"):
            exported = tmp_path / f"out.{fmt}"
            args = ["export", str(session_id), "--format", fmt, "--out", str(exported)]
            assert main([*args, "--db", str(db)]) == 0
            text = exported.read_text(encoding="utf-8")
            for name in names:
                assert name in text
            assert "sk-kurabe-test" not in text
        first_line = json.loads(
            (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()[0]
        )
        assert first_line  # a record per reply

        # Resume: none of the three names is a profile; each pane comes back as it was resolved.
        assert not set(names) & set(load_profiles())
        compatible.script(openai_stream(["はい、覚えてるよ。"], model="qwen-test"))
        asked = len(compatible.requests)
        assert main(["replay", "--resume", str(session_id), "--db", str(db), "--plain"]) == 0
        capsys.readouterr()
        assert len(compatible.requests) == asked + 1  # only the failed turn, no model list
        assert compatible.requests[-1].body["model"] == "qwen-test"
        final = Store(db).load_record(session_id)
        latest = final.latest_replies()
        assert len(latest) == 12 and all(r.completed for r in latest.values())
        assert [p.profile_name for p in final.panes] == names


def test_a_gguf_in_a_model_folder_is_named_by_its_file_name(
    tiny_gguf: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_gguf, folder / "tiny-chat.gguf")
    from kurabe.core.model_catalog import load_model_catalog

    catalog = load_model_catalog(None, [str(folder)])
    profile = resolve_spec("tiny-chat.gguf", catalog.profiles, list_models=no_listing)
    assert profile is not None and profile.model == str(folder / "tiny-chat.gguf")
    assert profile.prompt_format == "gguf"


# -- model folders --------------------------------------------------------------------------


def _folder_with_two_ggufs(tiny_gguf: Path, tmp_path: Path) -> Path:
    from tests.tiny_gguf import make_tiny_gguf

    folder = tmp_path / "models"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(tiny_gguf, folder / "chat-model.gguf")
    bare = make_tiny_gguf(tmp_path / "bare.gguf", seed=1, chat_template=None)
    data = bare.read_bytes()
    # Cut inside the tensors: whoever reads past the metadata fails on this file.
    (folder / "sub" / "cut-tensors.gguf").write_bytes(data[: len(data) // 3])
    (folder / "notes.txt").write_text("not a model", encoding="utf-8")
    (folder / "fake.gguf").write_text("not a model either", encoding="utf-8")
    return folder


def test_a_model_folder_lists_its_ggufs_from_metadata_only(tiny_gguf: Path, tmp_path: Path) -> None:
    folder = _folder_with_two_ggufs(tiny_gguf, tmp_path)
    found, problems = scan_model_dirs([folder, tmp_path / "missing"])
    assert [entry.name for entry in found] == ["chat-model.gguf", "cut-tensors.gguf"]
    chat, cut = found
    assert (chat.quantization, chat.template, chat.architecture) == ("F32", "chatml", "llama")
    assert chat.size == tiny_gguf.stat().st_size
    assert (cut.quantization, cut.template) == ("F32", "none")
    assert len(problems) == 2
    assert "fake.gguf" in problems[0] and "missing" in problems[1]
    assert not any("notes.txt" in problem for problem in problems)


def test_kurabe_models_lists_the_folder_and_loads_nothing(
    tiny_gguf: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import llama_cpp

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("listing loaded a model")

    monkeypatch.setattr(llama_cpp, "llama_model_load_from_file", never)
    monkeypatch.setattr(llama_cpp, "Llama", never)
    folder = _folder_with_two_ggufs(tiny_gguf, tmp_path)
    (tmp_path / "kurabe-home" / "config").mkdir(parents=True)
    (tmp_path / "kurabe-home" / "config" / "config.toml").write_text(
        f'models_dirs = ["{folder}"]\n', encoding="utf-8"
    )
    assert main(["models"]) == 0
    captured = capsys.readouterr()
    listed = captured.out.split("# GGUF files in model folders", 1)[1].splitlines()[1:]
    rows = [line.split("\t") for line in listed]
    assert [row[0] for row in rows] == ["chat-model.gguf", "cut-tensors.gguf"]
    assert rows[0][2:5] == ["F32", "chatml", "llama"] and rows[1][3] == "none"
    assert rows[0][1].endswith("KB")
    assert "fake.gguf" in captured.err and "notes.txt" not in captured.err + captured.out
    # --models-dir lists a folder too (here the same one, given twice: listed once)
    assert main(["models", "--models-dir", str(folder)]) == 0
    assert capsys.readouterr().out.count("chat-model.gguf") == 1


# -- kurabe models add ----------------------------------------------------------------------


def test_models_add_writes_a_profile_with_where_it_came_from(
    tiny_gguf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "kurabe-home" / "config" / "models.toml"
    assert main(["models", "add", str(tiny_gguf)]) == 0
    assert main(["models", "add", "openai:gpt-4o", "--name", "gpt4o"]) == 0
    url = "http://kurabe:hunter22@127.0.0.1:8080/v1#qwen"
    assert main(["models", "add", url]) == 0
    capsys.readouterr()
    text = file.read_text(encoding="utf-8")
    assert f"# from {tiny_gguf}, {tiny_gguf.resolve()} (kurabe models add, " in text
    assert "# from openai:gpt-4o (kurabe models add, " in text
    assert "# from http://127.0.0.1:8080/v1#qwen (kurabe models add, " in text
    saved = {p.name: p for p in parse_models_file(file)}
    assert saved["tiny"].model == str(tiny_gguf.resolve()) and saved["tiny"].is_local
    assert saved["gpt4o"].api_key_env == "OPENAI_API_KEY" and saved["gpt4o"].model == "gpt-4o"
    assert saved["qwen"].base_url == "http://kurabe:hunter22@127.0.0.1:8080/v1"
    assert load_profiles()["tiny"] == saved["tiny"]

    # never overwrites a name: neither its own nor a built-in one
    assert main(["models", "add", "openai:gpt-4.1", "--name", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "'tiny' already exists" in err and err.count("\n") == 1
    assert main(["models", "add", "anthropic:claude-sonnet-4-6"]) == 2
    assert "already exists (built-in)" in capsys.readouterr().err
    assert file.read_text(encoding="utf-8") == text


# -- bad specs ------------------------------------------------------------------------------


def _bad_specs(tmp_path: Path, server: WireServer) -> dict[str, str]:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    server.model_ids = ["a-model", "b-model"]
    return {
        str(tmp_path / "missing.gguf"): "no such file",
        str(tmp_path / "notes.txt"): "not a GGUF file",
        str(tmp_path): "not a GGUF file",
        "ollama:llama3": "unknown provider prefix 'ollama:'",
        f"http://127.0.0.1:{free_port()}/v1": "does not answer",
        server.origin: "serves 2 models (a-model, b-model)",
        "ftp://127.0.0.1/v1": "unknown URL scheme",
        "localhost:8080/v1#qwen": "a server URL starts with http://",
    }


@pytest.mark.parametrize("where", ["replay", "app", "judge", "models add"])
def test_every_bad_spec_is_one_line_and_exit_code_2(
    where: str, tmp_path: Path, server: WireServer, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "k.sqlite3")
    for spec, expected in _bad_specs(tmp_path, server).items():
        argv = {
            "replay": ["replay", "seed-gpt4", "--models", f"gemma-270m,{spec}", "--db", db],
            "app": ["--models", spec, "--db", db],
            "judge": ["judge", "last", "--judge", spec, "--db", db],
            "models add": ["models", "add", spec],
        }[where]
        assert main(argv) == 2, spec
        captured = capsys.readouterr()
        err = captured.err
        assert err.startswith("kurabe: ") and err.count("\n") == 1, err
        assert expected in err, err
        assert "Traceback" not in err + captured.out


def test_kurabe_prompt_takes_a_gguf_path(
    tiny_gguf: Path, capsys: pytest.CaptureFixture[str], unload: None
) -> None:
    assert main(["prompt", "--model", str(tiny_gguf), "--user", "やあ"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<|im_start|>system\n") and "<|im_start|>user\nやあ<|im_end|>" in out


def test_the_app_opens_on_typed_models_and_offers_them_and_the_folders(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kurabe.session.launch import AppOptions, build_context, plan_start

    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_gguf, folder / "in-folder.gguf")
    shutil.copy(tiny_gguf, tmp_path / "mine.gguf")
    monkeypatch.chdir(tmp_path)
    options = AppOptions(
        models="gemma-270m,./mine.gguf,in-folder.gguf",
        models_dir=[str(folder)],
        judge="openai:gpt-4.1",
        db=str(tmp_path / "k.sqlite3"),
    )
    context = build_context(options)
    plan = plan_start(options, context)
    assert [p.name for p in plan.profiles] == ["gemma-270m", "./mine.gguf", "in-folder.gguf"]
    assert plan.profiles[2].model == str(folder / "in-folder.gguf")
    assert {"./mine.gguf", "in-folder.gguf"} <= set(context.profiles)  # the panes dialog lists them
    assert context.judge_profile is not None and context.judge_profile.name == "openai:gpt-4.1"
    context.store.close()
