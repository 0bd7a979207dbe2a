"""What ``kurabe`` opens with, decided before the app starts (no terminal needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from backends.profiles import BUILTIN_PROFILES, ModelProfile
from backends.readiness import unusable_reason
from foundation.errors import KurabeError
from kurabe.session.launch import (
    build_context,
    default_profiles,
    open_session,
    parse_models_option,
    plan_start,
)
from kurabe.store.store import Store
from tests.fake_backends import FakeBackend, fake_factory


def args(**values: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "persona": None,
        "scenario": None,
        "models": None,
        "models_file": None,
        "db": None,
        "blind": False,
        "rater": None,
        "resume": None,
        "parallel_local": False,
    }
    base.update(values)
    return argparse.Namespace(**base)


def test_defaults_are_the_embedded_panes_and_the_anime_fan(tmp_path: Path) -> None:
    context = build_context(args(db=str(tmp_path / "k.sqlite3")))
    plan = plan_start(args(), context)
    assert plan.persona.id == "anime-fan"
    assert [p.name for p in plan.profiles] == ["gemma-270m", "gemma-270m-transcript"]
    assert plan.scenario is None
    context.store.close()


def test_api_panes_join_the_defaults_when_their_key_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    profiles = {p.name: p for p in BUILTIN_PROFILES}
    chosen = default_profiles(profiles)
    backends = [p.backend for p in chosen]
    assert "openai" in backends and "anthropic" not in backends
    anthropic = next(p for p in profiles.values() if p.backend == "anthropic" and p.default)
    assert unusable_reason(anthropic) is not None


def test_scenario_brings_its_persona_and_models_are_checked(tmp_path: Path) -> None:
    context = build_context(args(db=str(tmp_path / "k.sqlite3")))
    plan = plan_start(args(scenario="keigo-shop", models="gemma-270m,gemma-270m"), context)
    assert plan.scenario is not None and plan.persona.id == plan.scenario.persona
    assert len(plan.profiles) == 2
    with pytest.raises(KurabeError, match="unknown model profile"):
        parse_models_option("gemma-270m,nope", context.profiles)
    with pytest.raises(KurabeError, match="1 to 6"):
        parse_models_option(",".join(["gemma-270m"] * 7), context.profiles)
    context.store.close()


def test_resume_reopens_the_stored_session(tmp_path: Path) -> None:
    db = tmp_path / "k.sqlite3"
    profile = ModelProfile(name="alpha", backend="openai", model="alpha")
    factory = fake_factory({"alpha": FakeBackend("alpha")})
    context = build_context(args(db=str(db)), backend_factory=factory)
    context.profiles["alpha"] = profile
    first = open_session(plan_start(args(models="alpha", persona="translator"), context), context)
    context.store.close()

    context = build_context(args(db=str(db)), backend_factory=factory)
    context.profiles["alpha"] = profile
    plan = plan_start(args(resume="last"), context)
    assert plan.resume_id == first.id and plan.persona.id == "translator"
    resumed = open_session(plan, context)
    assert resumed.id == first.id and [p.profile.name for p in resumed.panes] == ["alpha"]
    with pytest.raises(KurabeError, match="session number"):
        plan_start(args(resume="abc"), context)
    context.store.close()
    assert Store(db).sessions.exists(first.id)
