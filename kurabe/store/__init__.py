"""The database (:class:`~kurabe.store.database.Database`: one connection, its lock, its
transactions and migrations) and a repository per family of tables composed on it (sessions,
replies, ratings, judging) in :class:`~kurabe.store.store.Store`, with the plain row types they
return.
"""
