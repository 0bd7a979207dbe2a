"""kurabe (比べ): compare Japanese LLMs side by side on persona conversations.

The domain package: paths, errors, the comparison session, the SQLite store, exports,
the leaderboard and the automatic Japanese checks. It never imports Textual.
"""

__version__ = "0.1.0"
