"""The database: one connection with its migrations, and a repository per family of tables
(sessions, replies, ratings, judging), with the plain row types they return.
"""
