"""The Textual app that ``kurabe`` opens: panes side by side, live streaming, keyboard rating.

One module per widget or screen, its ``.tcss`` beside it. :mod:`tui.app` has :func:`run_app`
(what the command line calls) and the App; :mod:`tui.main_screen` the comparison screen;
:mod:`tui.transcript_view` and :mod:`tui.textflow` the streaming pane body that keeps six panes
responsive. Only this package imports Textual.
"""
