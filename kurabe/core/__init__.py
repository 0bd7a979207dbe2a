"""The vocabulary every part of the domain shares: verdicts, scores and their labels, pane
letters, the blind rule, rating settings, what a profile snapshot records, and scrubbing secrets
and CSV cells.
"""
