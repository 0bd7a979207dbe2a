"""The database (:class:`~kurabe.store.database.Database`: the one seam, with its SQLite and
PostgreSQL engines, their transactions and one migration history) and a repository per family of
tables composed on it (sessions, replies, ratings, judging) in
:class:`~kurabe.store.store.Store`, with the plain row types they return; which database to open
(:mod:`kurabe.store.target`) and copying one store into another (:mod:`kurabe.store.copy`).
"""
