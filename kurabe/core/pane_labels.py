"""A session's panes: one to six, lettered A–F. Every limit on the number of panes (a new
session, ``--models``, the models dialog, ``kurabe replay``) reads :data:`MAX_PANES` here."""

from __future__ import annotations

PANE_LABELS = "ABCDEF"
MAX_PANES = len(PANE_LABELS)
