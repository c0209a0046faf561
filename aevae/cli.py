"""The `aevae` command. Each subcommand is a module with `configure(parser)` and
`run(args) -> exit status`.

How a command ends, whatever goes wrong: an error the user can fix (an `AevaeError`, raised
where aevae meets the outside: a store, a storage, a folder, a file, a value) is one
sentence and exit status 2; Ctrl-C or `kill` ends the runs in progress KILLED and exits with
128 + the signal's number; anything else is a bug, said in one line with exit status 1.
`--debug` (or AEVAE_DEBUG=1) adds the traceback. Every line shown passes through
`aevae.redact`, so no URL's password reaches the terminal.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from aevae.errors import DEBUG_ENV, AevaeError, debugging
from aevae.interrupts import exit_status, stop_on_signals
from aevae.redact import redact

# name -> (module, one-line help); modules are imported only when their command runs
COMMANDS = {
    "train": ("aevae.commands.train", "train one configuration and track it in MLflow"),
    "tune": ("aevae.commands.tune", "run or resume an Optuna study of a cell, tracked in MLflow"),
    "report": ("aevae.commands.report", "write RESULTS.md and figures for a grid from its MLflow runs"),
    "bench": ("aevae.commands.bench", "run a benchmark grid, resumably, every run tracked in MLflow"),
    "compare": ("aevae.commands.compare", "compare two versions of a grid cell by cell, beyond seed noise"),
}
DEBUG_HELP = f"show the traceback of an error (also ${DEBUG_ENV}=1)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aevae", description="Autoencoder benchmarks tracked in MLflow.")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text[:1].upper() + help_text[1:] + ".")
        command.set_defaults(module=module)
        # also after the command's name; SUPPRESS keeps `aevae --debug train` working
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        importlib.import_module(module).configure(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.debug:
        os.environ[DEBUG_ENV] = "1"  # for bench's worker processes too
    prefix = f"aevae {args.command}"
    try:
        with stop_on_signals(args.command):
            return importlib.import_module(args.module).run(args)
    except AevaeError as exc:
        show_traceback()
        print(f"{prefix}: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        text = str(exc) if str(exc).startswith("interrupted") else "interrupted"
        print(f"{prefix}: {text}; the runs in progress ended KILLED.", file=sys.stderr)
        return exit_status(exc)
    except Exception as exc:  # noqa: BLE001 - a bug: one line, and the traceback on request
        show_traceback()
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        print(f"{prefix}: internal error: {type(exc).__name__}{': ' if first else ''}{redact(first)} "
              f"(a bug in aevae; rerun with --debug or {DEBUG_ENV}=1 for the traceback, and report it).",
              file=sys.stderr)
        return 1


def show_traceback() -> None:
    if debugging():
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
