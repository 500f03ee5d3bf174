"""The modules of tools/dev.py, the one entry point of the dev tasks."""
