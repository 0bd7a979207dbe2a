"""The persona languages in words, as the battles record them (FastChat's ``language`` field)."""

from __future__ import annotations

LANGUAGE_NAMES = {"ja": "Japanese", "en": "English", "zh": "Chinese", "ko": "Korean"}
