"""The kurabe Textual app and :func:`run_app`, what ``kurabe`` with no subcommand runs.

The app shows one :class:`~kurabe.session.comparison.ComparisonSession` at a time on a
:class:`~tui.main_screen.MainScreen`. Choosing another persona, scenario or set of panes (command
palette) starts a new session — the old one is already saved — and swaps the screen.

The command palette (ctrl+p) lists kurabe's own commands (:meth:`KurabeApp.get_system_commands`:
persona, scenario, panes, export, and the main screen's summary, replay toggle, reveal and keys)
beside Textual's. They are not the command line's subcommands (:mod:`kurabe.commands`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from backends import create_backend
from backends.base import one_line
from backends.model_specs import FOLDER_SOURCE, SPEC_FORMS, resolve_spec
from backends.profiles import ModelProfile
from backends.readiness import unusable_reason
from foundation.errors import KurabeError
from kurabe.core.secret_scrub import env_secrets
from kurabe.session.comparison import ComparisonSession
from kurabe.session.launch import (
    AppContext,
    BackendFactory,
    build_context,
    open_session,
    plan_start,
)
from personas import Persona
from scenarios import Scenario
from tui.choice_dialog import Choice, ChoiceDialog
from tui.main_screen import MainScreen
from tui.models_dialog import ModelsDialog
from tui.textual_internals import GcPacer

log = logging.getLogger(__name__)

EXPORT_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("md", "Markdown", "per model: verdict, settings, transcript, ratings"),
    ("jsonl", "JSONL", "one record per reply, with ratings"),
    ("csv", "CSV", "one row per reply"),
    ("html", "HTML", "a page to share"),
    ("battles", "Battles (JSONL)", "pairwise picks for Chatbot-Arena-style tools"),
)
CLOSE_TIMEOUT_S = 5.0
GC_CHECK_INTERVAL_S = 30.0


class KurabeApp(App[int]):
    """比べ — the same persona conversation with several models side by side."""

    TITLE = "kurabe"
    CSS_PATH = "app.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", priority=True, key_display="^q"),
    ]

    def __init__(
        self,
        context: AppContext,
        session: ComparisonSession,
        *,
        load_on_mount: bool = True,
        export_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.context = context
        self.session = session
        self.quit_with_unsaved = False
        """Set by a first quit that found ratings still pending: the second one quits."""
        self.load_on_mount = load_on_mount
        self.export_dir = export_dir
        self.last_export: Path | None = None
        self.gc_pacer = GcPacer()

    # -- screens -------------------------------------------------------------------------------

    def _make_screen(self, session: ComparisonSession) -> MainScreen:
        return MainScreen(
            session,
            store=self.context.store,
            score_labels=self.context.score_labels or None,
            tags=self.context.tags,
            judge_profile=self.context.judge_profile,
            judge_badge=self.context.judge_badge,
            judge_factory=self.context.backend_factory,
            load_on_mount=self.load_on_mount,
        )

    def on_mount(self) -> None:
        self.gc_pacer.start()
        self.set_interval(GC_CHECK_INTERVAL_S, self._collect_garbage_if_due, name="kurabe-gc")
        self.push_screen(self._make_screen(self.session))
        for warning in self.context.warnings:
            self.notify(one_line(warning), severity="warning", timeout=10)

    def on_unmount(self) -> None:
        self.gc_pacer.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and isinstance(self.screen, MainScreen):
            self.screen.paint_soon()  # what the key does is painted without waiting a frame
        await super().on_event(event)

    def _collect_garbage_if_due(self) -> None:
        self.gc_pacer.tick(busy=self.session.busy)

    def on_main_screen_turn_finished(self, message: MainScreen.TurnFinished) -> None:
        """A turn ended: a good moment for a full garbage collection (the rater is reading)."""
        self.set_timer(0.3, self._collect_garbage_after_turn)

    def _collect_garbage_after_turn(self) -> None:
        if not self.session.busy:
            self.gc_pacer.collect()

    @property
    def main_screen(self) -> MainScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, MainScreen):
                return screen
        return None

    async def action_quit(self) -> None:
        screen = self.main_screen
        unsaved = screen.rating.still_pending() if screen is not None else 0
        if unsaved and not self.quit_with_unsaved:
            # Ratings the database could not take yet: quitting now would drop them silently.
            self.quit_with_unsaved = True
            self.notify(
                f"{unsaved} rating(s) not saved yet (the database is unreachable): "
                "wait for them, or quit again to drop them",
                severity="error",
                timeout=10,
            )
            return
        await self.close_session(self.session)
        self.exit(0)  # the screens close what they opened (the judge) as they are unmounted

    async def close_session(self, session: ComparisonSession) -> None:
        """Cancel what streams (the partial text is saved) and release the backends."""
        try:
            await asyncio.wait_for(session.aclose(), CLOSE_TIMEOUT_S)
        except Exception:
            log.exception("closing session %s failed", session.id)

    async def switch_session(self, session: ComparisonSession) -> None:
        old = self.session
        self.session = session
        await self.close_session(old)
        while len(self.screen_stack) > 2:
            self.pop_screen()
        await self.switch_screen(self._make_screen(session))
        self.notify(f"new session #{session.id}", timeout=3)

    def _start_session(
        self,
        persona: Persona,
        profiles: list[ModelProfile],
        scenario: Scenario | None,
    ) -> None:
        try:
            session = self.context.new_session(
                persona, profiles, scenario, blind=self.session.blind
            )
        except KurabeError as exc:
            self.notify(one_line(str(exc)), severity="error")
            return
        self.run_worker(self.switch_session(session), name="switch", exit_on_error=False)

    # -- palette commands --------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette's entries: kurabe's own, then Textual's (theme, quit …)."""
        yield SystemCommand(
            "Choose persona…",
            "start a new session with another persona",
            self.action_choose_persona,
        )
        yield SystemCommand(
            "Choose scenario…",
            "replay a scripted conversation (new session)",
            self.action_choose_scenario,
        )
        yield SystemCommand(
            "Choose panes (models)…",
            "which models to compare, 1 to 6 (new session)",
            self.action_choose_panes,
        )
        yield SystemCommand(
            "Export session…",
            "write this session as Markdown, JSONL, CSV, HTML or battles",
            self.action_export,
        )
        main = self.main_screen
        if main is not None:
            yield SystemCommand(
                "Session summary", "scores per pane, picks, verdicts", main.action_summary
            )
            yield SystemCommand(
                "Replay: wait for a pick after each turn",
                "toggle for ctrl+g (send all)",
                main.action_toggle_wait,
            )
            yield SystemCommand(
                "Reveal model names",
                "blind mode: show which model is behind each letter",
                main.action_reveal,
            )
            yield SystemCommand("Keys", "every key of the main screen", main.action_help)
        yield from super().get_system_commands(screen)

    def action_choose_persona(self) -> None:
        personas = self.context.personas.items
        choices = [
            Choice(persona.id, persona.title, one_line(persona.system, 50))
            for persona in personas.values()
        ]

        def chosen(persona_id: str | None) -> None:
            if persona_id is None or persona_id not in personas:
                return
            self._start_session(personas[persona_id], self._current_profiles(), None)

        self.push_screen(
            ChoiceDialog("Persona (starts a new session)", choices, self.session.persona.id),
            chosen,
        )

    def action_choose_scenario(self) -> None:
        scenarios = self.context.scenarios.items
        personas = self.context.personas.items
        choices = [Choice("", "no scenario", "free conversation")]
        for scenario in scenarios.values():
            missing = None
            if scenario.persona not in personas:
                missing = f"persona {scenario.persona} missing"
            choices.append(
                Choice(
                    scenario.id,
                    scenario.title,
                    f"{len(scenario.turns)} turns · {scenario.persona}",
                    missing,
                )
            )
        current = self.session.scenario.id if self.session.scenario else ""

        def chosen(scenario_id: str | None) -> None:
            if scenario_id is None:
                return
            if scenario_id == "":
                self._start_session(self.session.persona, self._current_profiles(), None)
                return
            scenario = scenarios[scenario_id]
            persona = personas.get(scenario.persona, self.session.persona)
            self._start_session(persona, self._current_profiles(), scenario)

        self.push_screen(ChoiceDialog("Scenario (starts a new session)", choices, current), chosen)

    def action_choose_panes(self) -> None:
        self.run_worker(self._choose_panes(), name="models", exit_on_error=False)

    async def _choose_panes(self) -> None:
        for profile in self._current_profiles():  # a resumed session's models, typed or not
            self.context.profiles.setdefault(profile.name, profile)
        profiles = list(self.context.profiles.values())
        choices = await asyncio.to_thread(profile_choices, profiles)
        selected = [name for name in self._current_names()]

        def chosen(names: list[str] | None) -> None:
            if not names:
                return
            chosen_profiles = [self.context.profiles[name] for name in names]
            self._start_session(self.session.persona, chosen_profiles, self.session.scenario)

        self.push_screen(ModelsDialog(choices, selected, self._add_model_spec), chosen)

    async def _add_model_spec(self, spec: str) -> Choice:
        """A model typed into the panes dialog, resolved off the loop (a server may be asked
        which models it serves); raises KurabeError, one line."""
        profile = await asyncio.to_thread(resolve_spec, spec, self.context.profiles)
        if profile is None:
            raise KurabeError(f"unknown model profile '{spec}'; give {SPEC_FORMS}")
        self.context.profiles.setdefault(profile.name, profile)
        (choice,) = await asyncio.to_thread(profile_choices, [profile])
        return choice

    def _current_profiles(self) -> list[ModelProfile]:
        ordered = sorted(self.session.panes, key=lambda pane: pane.index)
        if self.session.blind:
            # Keep the original order out of sight: a new blind session reshuffles anyway.
            ordered = sorted(ordered, key=lambda pane: pane.profile.name)
        return [pane.profile for pane in ordered]

    def _current_names(self) -> list[str]:
        return [profile.name for profile in self._current_profiles()]

    def action_export(self) -> None:
        choices = [Choice(key, label, detail) for key, label, detail in EXPORT_FORMATS]

        def chosen(fmt: str | None) -> None:
            if fmt is not None:
                self.export_session(fmt)

        self.push_screen(ChoiceDialog("Export this session as…", choices, "md"), chosen)

    def export_session(self, fmt: str) -> Path | None:
        from tui.exporting import export_session_file

        try:
            path = export_session_file(
                self.context.store, self.session.id, fmt, directory=self.export_dir
            )
        except KurabeError as exc:
            self.notify(one_line(str(exc)), severity="error")
            return None
        except Exception as exc:
            log.exception("export failed")
            self.notify(one_line(f"export failed: {type(exc).__name__}: {exc}"), severity="error")
            return None
        self.last_export = path
        self.notify(str(path), title="exported", timeout=10)
        return path


def profile_choices(profiles: Iterable[ModelProfile]) -> list[Choice]:
    """Every profile with what ``kurabe models`` says about it (unusable ones with the reason)."""
    describe: Any = None
    offload = False
    try:
        from backends.llama_cpp_backend import gpu_offload_supported
        from backends.readiness import describe_profile

        describe = describe_profile
        offload = gpu_offload_supported()
    except Exception:
        log.exception("kurabe models is unavailable; falling back to simple checks")
    choices = []
    for profile in profiles:
        reason = unusable_reason(profile)
        detail = profile.description or profile.backend
        if describe is not None:
            try:
                state, info = describe(profile, offload)
                if state == "usable":
                    detail = info or detail
                    if profile.source.startswith(FOLDER_SOURCE):  # size, template, folder
                        detail = f"{profile.description} · {profile.source}"
                else:
                    reason = f"{state}: {info}"
            except Exception as exc:
                reason = one_line(f"{type(exc).__name__}: {exc}")
        choices.append(Choice(profile.name, profile.name, detail, reason))
    return choices


def log_to_file(secrets: Iterable[str] = ()) -> logging.Handler:
    """While the app runs, log lines go to a file in the data directory, never to the screen.

    Every line passes a :class:`~backends.api_errors.RedactingFilter` first, whichever library
    wrote it (the SDKs log request URLs at debug level): no key in ``secrets``, nothing shaped
    like a key and no URL credential reaches the file."""
    from backends.api_errors import RedactingFilter
    from foundation.paths import data_dir, ensure_dir

    try:
        path = ensure_dir(data_dir()) / "kurabe.log"
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    return handler


def run_study_app(args: argparse.Namespace) -> int:
    """``kurabe study rate``: a rater's queue in a rating study (:mod:`tui.study_screen`)."""
    from tui.study_screen import run_study_queue

    return run_study_queue(args)


def run_app(args: argparse.Namespace, *, backend_factory: BackendFactory = create_backend) -> int:
    """Open the app for the command line's options. Config problems raise :class:`KurabeError`
    (printed as one line by the command line, exit code 2) before anything is drawn."""
    context = build_context(args, backend_factory=backend_factory)
    try:
        plan = plan_start(args, context)
        session = open_session(plan, context)
        log_to_file(env_secrets(p.api_key_env for p in context.profiles.values()))
        if any(pane.profile.is_local for pane in session.panes):
            try:
                from backends.llama_cpp_backend import route_native_logs

                route_native_logs()
            except Exception:
                log.warning("could not route llama.cpp logs to a file", exc_info=True)
        app = KurabeApp(context, session)
        app.run()
        return app.return_code or 0
    finally:
        context.store.close()
