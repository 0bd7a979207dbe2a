"""The panes dialog takes a typed model (a GGUF path here) besides the listed profiles, and
lists the GGUF files of the model folders with their size, quantization and template."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.widgets import Input, SelectionList, Static

from backends.model_specs import scan_model_dirs, with_folder_models
from tests.fake_backends import FakeBackend, fake_factory, fake_profile
from tests.tui_support import make_harness, type_text, wait_until
from tui.models_dialog import ModelsDialog


async def test_a_typed_gguf_path_joins_the_panes(tiny_gguf: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_gguf, folder / "in-folder.gguf")
    found, _ = scan_model_dirs([folder])
    profiles = with_folder_models({"alpha": fake_profile("alpha")}, found)
    typed = tmp_path / "typed.gguf"
    shutil.copy(tiny_gguf, typed)
    harness = make_harness({"alpha": FakeBackend("alpha", ["はい"])}, profiles=profiles)
    harness.context.backend_factory = fake_factory(
        {"alpha": FakeBackend("alpha", ["はい"]), str(typed): FakeBackend(str(typed), ["うん"])}
    )
    app = harness.app
    first_id = harness.session.id
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: harness.session.panes[0].status == "ready")
        app.action_choose_panes()
        await wait_until(pilot, lambda: isinstance(app.screen, ModelsDialog))
        dialog = app.screen
        options: SelectionList[str] = dialog.query_one(SelectionList)
        await wait_until(pilot, lambda: options.option_count == 2)
        by_name = {
            options.get_option_at_index(i).value: options.get_option_at_index(i)
            for i in range(options.option_count)
        }
        prompt = str(by_name["in-folder.gguf"].prompt)
        assert "F32" in prompt and "template: chatml" in prompt and "KB" in prompt
        hint = dialog.query_one("#models-hint", Static)

        await pilot.press("tab")  # from the list to the model input
        await wait_until(pilot, lambda: isinstance(dialog.focused, Input))
        await type_text(pilot, "ollama:llama3")
        assert dialog.query_one(Input).value == "ollama:llama3"
        await pilot.press("enter")
        await wait_until(pilot, lambda: "unknown provider prefix" in str(hint.render()))
        assert options.option_count == 2 and isinstance(app.screen, ModelsDialog)

        dialog.query_one(Input).value = str(typed)
        await pilot.press("enter")
        await wait_until(pilot, lambda: options.option_count == 3)
        assert options.selected == ["alpha", str(typed)]
        assert dialog.query_one(Input).value == ""
        await pilot.press("enter")  # the input is empty: open the session
        await wait_until(pilot, lambda: app.session.id != first_id)
        assert [pane.profile.name for pane in app.session.panes] == ["alpha", str(typed)]
        assert app.session.panes[1].profile.model == str(typed)
