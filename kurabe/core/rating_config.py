"""How a person rates: the rater's name, the score labels, the tags offered and the judge the app
asks, read from ``config.toml`` in the config directory (:func:`load_rating_config`), and who
the rater is when nobody said (:func:`resolve_rater`)."""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from foundation.errors import ConfigError
from kurabe.core.scores import SCORES

SCORE_LABELS_JA = {1: "破綻", 2: "不自然", 3: "OK", 4: "良い", 5: "素晴らしい"}
SCORE_LABELS_EN = {1: "broken", 2: "unnatural", 3: "OK", 4: "good", 5: "excellent"}
DEFAULT_TAGS = (
    "too-long",
    "out-of-character",
    "wrong-fact",
    "not-japanese",
    "wrong-register",
    "template-leak",
    "repetitive",
)
JUDGE_BADGE_MODES = ("after-rating", "always")


@dataclass(frozen=True, slots=True)
class RatingConfig:
    """What ``config.toml`` in the config directory says about rating (all keys optional)::

    rater = "hana"
    score_labels = "en"            # "ja" (default), "en", or a table {1 = "…", …, 5 = "…"}
    tags = ["kawaii", "too-formal"]  # added to the default tags
    judge = "gpt-4.1-mini"         # the profile the app's judge key (j) asks
    judge_badge = "after-rating"   # or "always": show the judge's score before you rate
    """

    rater: str | None = None
    score_labels: Mapping[int, str] = field(default_factory=lambda: dict(SCORE_LABELS_JA))
    tags: tuple[str, ...] = DEFAULT_TAGS
    judge: str | None = None
    judge_badge: str = "after-rating"
    """``after-rating``: a judge's score stays hidden until the rater has scored that reply (no
    anchoring); ``always``: shown as soon as the judge answers."""


def config_file() -> Path:
    from foundation.paths import config_dir

    return config_dir() / "config.toml"


def load_rating_config(path: Path | str | None = None) -> RatingConfig:
    """Read the rating keys of ``config.toml`` (missing file: defaults). Other keys are ignored."""
    from foundation.tomlfile import TomlDocument

    file = Path(path) if path is not None else config_file()
    if not file.exists():
        return RatingConfig()
    doc = TomlDocument.load(file)
    rater = doc.take(doc.data, (), "rater", str, required=False)
    labels: dict[int, str] = dict(SCORE_LABELS_JA)
    raw_labels = doc.take(doc.data, (), "score_labels", (str, dict), required=False)
    if isinstance(raw_labels, str):
        if raw_labels not in ("ja", "en"):
            raise doc.error(("score_labels",), 'must be "ja", "en" or a table of 1 to 5')
        labels = dict(SCORE_LABELS_JA if raw_labels == "ja" else SCORE_LABELS_EN)
    elif isinstance(raw_labels, dict):
        for key, value in raw_labels.items():
            if key not in {str(score) for score in SCORES}:
                raise doc.error(("score_labels", key), "keys are the scores 1 to 5")
            if not isinstance(value, str) or not value.strip():
                raise doc.error(("score_labels", key), "expected a non-empty string")
            labels[int(key)] = value
    extra = doc.take(doc.data, (), "tags", list, required=False) or []
    tags = list(DEFAULT_TAGS)
    for index, tag in enumerate(extra):
        if not isinstance(tag, str) or not tag.strip():
            raise doc.error(("tags", index), "tags are non-empty strings")
        if tag.strip() not in tags:
            tags.append(tag.strip())
    judge = doc.take(doc.data, (), "judge", str, required=False, non_empty=True)
    badge = doc.take(doc.data, (), "judge_badge", str, required=False) or "after-rating"
    if badge not in JUDGE_BADGE_MODES:
        raise doc.error(("judge_badge",), 'must be "after-rating" or "always"')
    return RatingConfig(
        rater=(rater or "").strip() or None,
        score_labels=labels,
        tags=tuple(tags),
        judge=judge.strip() if judge else None,
        judge_badge=badge,
    )


def resolve_study_rater(cli_value: str | None = None) -> str:
    """A rating study's rater: ``--rater``, else ``KURABE_RATER`` (one per terminal or SSH
    account), else as :func:`resolve_rater`."""
    import os

    if cli_value and cli_value.strip():
        return cli_value.strip()
    return os.environ.get("KURABE_RATER", "").strip() or resolve_rater(None)


def resolve_rater(cli_value: str | None = None) -> str:
    """``--rater``, else ``rater`` in config.toml, else the OS user name."""
    if cli_value and cli_value.strip():
        return cli_value.strip()
    try:
        configured = load_rating_config().rater
    except ConfigError:
        configured = None
    if configured:
        return configured
    try:
        return getpass.getuser() or "rater"
    except Exception:  # getuser raises OSError/KeyError where no user name can be found
        return "rater"
