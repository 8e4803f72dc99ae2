"""Mirrors: the table, URL mapping, env mode and launch-file rewriting, apply/revert, health."""
