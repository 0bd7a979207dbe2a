"""Figures computed from the store: battles derived from picks, the leaderboard (mean scores,
Bradley–Terry with bootstrap intervals), agreement between raters, and the charts drawn from them.
"""
