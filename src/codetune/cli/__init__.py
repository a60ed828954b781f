"""The `codetune` command: a thin Typer app. Each stage registers its commands from its own module."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import warnings

import typer
from rich.console import Console
from rich.markup import escape

from codetune import __version__
from codetune.errors import CodetuneError

app = typer.Typer(
    name="codetune",
    help="Which instruction data makes a better small code model? Fine-tune with LoRA, track losses, "
    "grade every checkpoint on LiveCodeBench, and compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
err_console = Console(stderr=True)

COMMAND_MODULES = (
    "model_cmd",
    "data_cmd",
    "train_cmd",
    "grade_cmd",
    "bench_cmd",
    "report_cmd",
    "run_cmd",
    "export_cmd",
)


def library_bars_off() -> None:
    """`--no-progress` also silences the libraries' tqdm bars: weight loading, hub downloads, dataset maps."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    import datasets.utils
    import transformers.utils.logging

    transformers.utils.logging.disable_progress_bar()  # and huggingface_hub's
    datasets.utils.disable_progress_bars()


def _version(value: bool) -> None:
    if value:
        print(f"codetune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    if debug:
        os.environ["CODETUNE_DEBUG"] = "1"


for _name in COMMAND_MODULES:
    try:
        importlib.import_module(f"codetune.cli.{_name}").register(app)
    except ModuleNotFoundError as _e:
        if _e.name != f"codetune.cli.{_name}":
            raise


def main() -> None:
    # A deprecation inside PEFT's calls to transformers, not something a codetune user can act on.
    warnings.filterwarnings(
        "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
    )
    try:
        code = app(standalone_mode=False, prog_name="codetune")
        if code == 130:  # typer turns a KeyboardInterrupt into Exit(130), which it returns here
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except (CodetuneError, OSError) as e:
        # an OSError naming a path is the user's or the machine's (unreadable input, --out naming a file, full disk)
        if os.environ.get("CODETUNE_DEBUG") == "1" or (isinstance(e, OSError) and not e.filename):
            raise
        message = str(e)
        if isinstance(e, OSError):
            in_the_way = isinstance(e, FileExistsError) and os.path.isfile(e.filename)
            reason = "is a file where a folder is needed" if in_the_way else e.strerror
            message = f"{e.filename}: {reason or e}"
        _print_error(message)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted[/]: finished work is saved; run the same command again to resume"
        )
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as e:  # click's usage errors
        if isinstance(e, _usage_errors()) and not e.format_message():  # type: ignore[attr-defined]
            e.show()  # type: ignore[attr-defined]  # no arguments: click printed the help
            sys.exit(e.exit_code)  # type: ignore[attr-defined]
        if isinstance(e, _usage_errors()):
            _print_error(_usage_line(e))
            sys.exit(e.exit_code)  # type: ignore[attr-defined]
        raise


def _print_error(message: str) -> None:
    # escaped: a message quoting the user's input (`-o x=[/a.json]`) is not rich markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _usage_line(e: Exception) -> str:
    """Click's Usage / Try / Error block as one line: the command, what is wrong, where help is."""
    message = e.format_message()  # type: ignore[attr-defined]
    ctx = getattr(e, "ctx", None)
    path = ctx.command_path if ctx is not None else _command_path(sys.argv[1:])
    return f"{path}: {message} (see '{path} --help')"


def _command_path(args: list[str]) -> str:
    """The subcommands named in `args` (click's parser errors carry no context to ask)."""
    words, command = ["codetune"], typer.main.get_command(app)
    for arg in args:
        if arg.startswith("-"):
            continue
        sub = getattr(command, "commands", {}).get(arg)
        if sub is None:
            break
        words.append(arg)
        command = sub
    return " ".join(words)


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click's exception base, from click and from the copy that recent typer releases vendor as `typer._click`."""
    found = []
    for name in ("click.exceptions", "typer._click.exceptions"):
        with contextlib.suppress(ImportError):
            found.append(importlib.import_module(name).ClickException)
    return tuple(found)
