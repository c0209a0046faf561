"""Optuna studies: study files and search spaces (space.py), storages and dead-trial
recovery (storage.py), the objective and the study loop (study.py), summaries (summary.py)."""
