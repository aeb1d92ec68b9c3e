"""The `fx` command line: thin Typer commands over plain core functions."""
