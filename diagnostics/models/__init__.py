"""Diagnostics tables, one module per concern; Django finds them all through this package."""
