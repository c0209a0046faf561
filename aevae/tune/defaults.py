"""What `aevae tune` and `aevae bench --tuned` show in their options, without importing
Optuna or SQLAlchemy: building the command-line parser reads these, and the parser is
built for every command, `--help` included."""

DEFAULT_STUDIES_DIR = "studies"  # folder of the study files
DEFAULT_STORAGE = "studies/optuna.log"  # Optuna journal file, see storage.py
PRUNER_NAMES = ("median", "hyperband", "none")  # the keys of space.PRUNERS; median is the default
