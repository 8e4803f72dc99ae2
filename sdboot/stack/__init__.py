"""The torch stack: profiles, which one fits, package commands, the probe and the verdict."""
