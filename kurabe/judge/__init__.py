"""The LLM judge: its rubric, the prompt it is given, the answers it must give and how they are
parsed, and the run that scores or compares a session's replies.
"""
