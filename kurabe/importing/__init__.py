"""Question sets in: Japanese MT-Bench, ELYZA-tasks-100 and plain JSONL, written as scenario
files."""
