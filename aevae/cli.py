"""The `aevae` command. Each subcommand is a module with `configure(parser)` and
`run(args) -> exit status`; errors a user can fix print as one line, without a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys

from aevae.errors import AevaeError

# name -> (module, one-line help); modules are imported only when their command runs
COMMANDS = {
    "train": ("aevae.commands.train", "train one configuration and track it in MLflow"),
    "tune": ("aevae.commands.tune", "run or resume an Optuna study of a cell, tracked in MLflow"),
    "report": ("aevae.commands.report", "write RESULTS.md and figures for a grid from its MLflow runs"),
    "bench": ("aevae.commands.bench", "run a benchmark grid, resumably, every run tracked in MLflow"),
    "compare": ("aevae.commands.compare", "compare two versions of a grid cell by cell, beyond seed noise"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aevae", description="Autoencoder benchmarks tracked in MLflow.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text[:1].upper() + help_text[1:] + ".")
        command.set_defaults(module=module)
        importlib.import_module(module).configure(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return importlib.import_module(args.module).run(args)
    except AevaeError as exc:
        print(f"aevae {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"aevae {args.command}: interrupted.", file=sys.stderr)
        return 130
