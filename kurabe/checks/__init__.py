"""The automatic Japanese checks on a reply (script share, register, length, leakage, repetition,
persona breaks) and the typed report they produce.
"""
