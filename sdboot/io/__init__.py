"""The effect funnels: processes, HTTP, files, git, data files, state files and the secret mask."""
