"""One module per `aevae` subcommand (see aevae.cli)."""
