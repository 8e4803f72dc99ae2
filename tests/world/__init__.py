"""The simulated world the tests (and later the offline demo) build from real parts:
fake GPU driver libraries compiled in C, stub torch wheels, a loopback package index."""
