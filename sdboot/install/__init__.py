"""Install a WebUI: the run (plan, record of progress, lock) and its steps."""
