"""Facts about this machine: the GPU and driver, and Python environments (venv, conda)."""
