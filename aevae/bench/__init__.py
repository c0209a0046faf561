"""Benchmark grids: grid files (grid.py), claiming cells in MLflow (claims.py), running them
locally (runner.py), what happened to each (outcomes.py), and the command's flow (run.py)."""
