"""Subcommands of the kurabe command line, one module each."""
