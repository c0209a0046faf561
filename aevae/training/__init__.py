"""Training: `loop.train` (the one function that trains), `evaluate` (metrics of a split),
`runtime` (device, precision, provenance) and `run_figures` (the figures every run logs).

Nothing is imported here: the analysis uses `evaluate`, and `loop` uses the analysis."""
