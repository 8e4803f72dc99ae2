"""Launching a WebUI: the guard that refuses a broken install, then the hand-over (exec)."""
