"""What goes into a WebUI after the install: model files and extensions."""
