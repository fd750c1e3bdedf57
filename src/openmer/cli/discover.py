"""``openmer discover`` and ``openmer enrol`` (``docs/discover.md``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from openmer.cli.app import app
from openmer.cli.common import ProgressCallback, console, handle_errors, rich_progress

if TYPE_CHECKING:
    from openmer.data.manifest import Manifest, Sample


@app.command("discover")
@handle_errors
def discover_command(
    run_dir: Path = typer.Argument(..., help="A run folder from `openmer train` (or `openmer enrol`)."),
    clips: list[Path] = typer.Argument(
        ..., help="Media files or folders of them, one manifest (.csv/.jsonl), or one `openmer timeline` folder "
                  "(its unknown segments)."),
    out: Path = typer.Option(..., "--out", help="Output folder: clusters.json, clusters.md, assignments.csv, map.png."),
    min_size: int = typer.Option(3, "--min-size", help="Smallest cluster kept; clips of smaller ones stay unknown."),
    k_max: int = typer.Option(8, "--k-max", help="Most clusters tried (k chosen by silhouette from 2)."),
    top: int = typer.Option(3, "--top", help="Names per cluster."),
    words: Path | None = typer.Option(
        None, "--words", help="Your own word list (one per line) instead of the shipped vocabulary."),
    template: str = typer.Option("This video is {}.", "--template", help="Prompt sentence of a word ({} = the word)."),
    include_known: bool = typer.Option(
        False, "--include-known", help="Also name clusters with the run's known classes (left out by default)."),
    train_data: str | None = typer.Option(
        None, "--train-data", help="Where the run's training clips are (a method without its own text alignment "
                                   "fits one on them); default: the data the run records."),
    seed: int = typer.Option(0, "--seed", help="Seed of k-means and t-SNE."),
    no_map: bool = typer.Option(False, "--no-map", help="Skip the t-SNE map."),
) -> None:
    """Group the clips the run rejects as unknown and name what each group resembles."""
    from openmer.discovery import clip_manifest, default_vocabulary, discover, read_word_list, write_discovery
    from openmer.errors import ConfigError
    from openmer.inference import load_run
    from openmer.paths import default_cache_dir

    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    vocab = read_word_list(words, template) if words is not None else default_vocabulary(template)
    manifest, skipped = clip_manifest(clips)
    for s in skipped:
        console.print(f"[yellow]warning:[/] skipped {s['error']}", highlight=False, soft_wrap=True)
    run = load_run(run_dir)
    result = discover(run, manifest, vocabulary=vocab, min_size=min_size, k_max=k_max, top=top, seed=seed,
                      exclude_known=not include_known, train_data=train_data, cache_dir=default_cache_dir())
    write_discovery(result, out, title=f"{run_dir.name}: rejected clips", skipped=skipped, tsne=not no_map)
    n_rej = int(result.rejected.sum())
    console.print(f"{len(manifest)} clips, {n_rej} rejected (threshold {result.threshold:.4g}); "
                  f"{result.clustering.n_clusters} cluster(s) -> {out}", highlight=False, soft_wrap=True)
    for c in result.clusters:
        names = ", ".join(n["word"] for n in c["names"]) or "unnamed"
        console.print(f"  cluster {c['cluster']}: {c['size']} clips, {names}", highlight=False, soft_wrap=True)


@app.command("enrol")
@handle_errors
def enrol_command(
    run_dir: Path = typer.Argument(..., help="A run folder from `openmer train`."),
    examples: list[str] = typer.Argument(
        ..., help="Example clips of the new class: media files or folders, a manifest (e.g. reviewed segments), "
                  "a timeline folder, or a discovered cluster DIR#N (DIR: an `openmer discover` --out)."),
    name: str = typer.Option(..., "--class", help="The new class's name."),
    out: Path = typer.Option(..., "--out", help="The new run folder."),
    steps: int = typer.Option(100, "--steps", help="Tuning steps of the new class's rows (0: none)."),
    lr: float = typer.Option(0.05, "--lr", help="Learning rate of the tuning."),
    train_data: str | None = typer.Option(
        None, "--train-data", help="Where the run's training clips are; default: the data the run records."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run in --out."),
) -> None:
    """Add a known class from a few examples (no retraining); write a new run folder."""
    from openmer.data.manifest import Manifest
    from openmer.discovery.enrol import enrol
    from openmer.discovery.sources import clip_manifest, cluster_manifest, is_cluster_spec
    from openmer.inference import load_run
    from openmer.paths import default_cache_dir

    parts = [cluster_manifest(e) for e in examples if is_cluster_spec(e)]
    plain = [Path(e) for e in examples if not is_cluster_spec(e)]
    if plain:
        found, skipped = clip_manifest(plain)
        for s in skipped:
            console.print(f"[yellow]warning:[/] skipped {s['error']}", highlight=False, soft_wrap=True)
        parts.append(found)
    manifest = parts[0] if len(parts) == 1 else Manifest(
        [s for p in parts for s in _absolute(p)], root=Path("/"), name="examples")
    run = load_run(run_dir)
    with rich_progress() as bar:
        result = enrol(run, name, manifest, out, train_data=train_data, steps=steps, lr=lr, overwrite=overwrite,
                       cache_dir=default_cache_dir(), source=" ".join(examples),
                       progress=ProgressCallback(bar, f"enrol {name}"))
    console.print(f"enrolled {name!r} from {len(manifest)} example(s): known classes "
                  f"{', '.join(result.method.known_classes)}; threshold {run.threshold:.4g} -> "
                  f"{result.threshold.value:.4g} -> {out}", highlight=False, soft_wrap=True)


def _absolute(manifest: Manifest) -> list[Sample]:
    """The rows of ``manifest`` with absolute media paths."""
    return [replace(s, video=str(manifest.path(s, "video")) if s.video else None,
                    audio=str(manifest.path(s, "audio")) if s.audio else None) for s in manifest]
