"""Tabular data: reading files, column preparation (TabularModel), the command."""
