"""A comparison session: its panes, the fan-out of one turn to every pane, each reply's stream,
ratings given in the session, the events it emits, and the headless replay that drives it.
"""
