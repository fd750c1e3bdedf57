"""The ``openmer`` command."""

from __future__ import annotations

import typer

from openmer import __version__

app = typer.Typer(
    name="openmer",
    help="Open-set multimodal emotion recognition: train, evaluate, predict and benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"openmer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Open-set multimodal emotion recognition (O-MER)."""


def _register() -> None:
    # Each command group lives in its own module and adds itself to ``app``.
    from openmer.cli import (  # noqa: F401
        ablate,
        benchmark,
        complexity,
        discover,
        encoders,
        figures,
        robustness,
        run,
        serve,
        starter,
        timeline,
    )


_register()


def main() -> None:  # console-script entry point
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
