"""Facts about a WebUI folder: its files and pins, launch flags, and sdboot's install record."""
