"""What `aevae bench` and `aevae report` show in their options, without importing MLflow or
torch: building the command-line parser reads these, and the parser is built for every
command, `--help` included."""

DEFAULT_GRID = "lab"  # benchmarks/lab.toml, whose runs land in experiment bench/lab
RESULTS_DIR = "benchmarks/results"  # <dir>/<grid>/ holds summary.csv, RESULTS.md and figures
REFERENCES_FILE = "references.toml"  # benchmarks/ holds it beside the grids; it is not a grid
