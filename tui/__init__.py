"""The Textual app that ``kurabe`` opens: panes side by side, live streaming, keyboard rating.

One module per widget or screen, its ``.tcss`` beside it. :mod:`tui.app` has :func:`run_app`
(what the command line calls) and the App with its command palette; :mod:`tui.main_screen` the
comparison screen, made of :mod:`tui.pane_strip` (the panes, kept up to date from the session's
events) and :mod:`tui.rating_controller` (the rating keys), which tell it things through
:mod:`tui.messages`; :mod:`tui.transcript_view` and :mod:`tui.textflow` the streaming pane body
that keeps six panes responsive; :mod:`tui.textual_internals` every place that reaches past
Textual's public API, and why. Only this package imports Textual.
"""
