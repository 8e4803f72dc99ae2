"""sdboot: installer and environment doctor for Stable Diffusion WebUI."""

__version__ = "0.1.0"
