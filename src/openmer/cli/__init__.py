"""Command-line interface (typer). Thin: parse, build a config, call one library function, print."""
