"""Typed command-line options: each command reads its :class:`argparse.Namespace` once, into a
frozen dataclass of its own (``ExportOptions``, ``ReplayOptions`` …), and uses only that.

:func:`options_from` fills the dataclass field by field from the namespace attribute of the same
name. A field the namespace lacks keeps its default: options declared with
``default=argparse.SUPPRESS`` (``--db`` given after the subcommand, or before it, or not at all)
and parsers that leave out the top-level options (a subcommand's parser built on its own).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

OptionsT = TypeVar("OptionsT", bound="DataclassInstance")


def options_from(cls: type[OptionsT], args: argparse.Namespace, *, prefix: str = "") -> OptionsT:
    """``cls`` built from ``args``; field ``name`` reads the attribute ``prefix + name``."""
    given = vars(args)
    values = {
        field.name: given[prefix + field.name]
        for field in dataclasses.fields(cls)
        if prefix + field.name in given
    }
    return cls(**values)
