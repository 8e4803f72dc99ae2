"""`python -m sdboot`: the same entry point as the console script."""

from sdboot.cli import main

if __name__ == "__main__":
    main()
