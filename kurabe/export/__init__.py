"""Rated transcripts out: the export view built from the store, and one writer per format
(Markdown, HTML, CSV, JSONL, battles).
"""
