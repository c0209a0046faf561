"""Links into MLflow's UI, for what aevae prints and writes (the bench's last line, the
report's run links). Light: no MLflow.

MLflow 3's UI has one switch for the whole UI, "GenAI" or "Model training" (top left), and
starts on GenAI, where an experiment opens on its traces overview. A link that carries
`workflowType=machine_learning` opens in the model-training view, where an experiment shows
its runs table; the UI keeps the switch where a user last put it.
"""

from __future__ import annotations

from aevae.redact import without_credentials

MODEL_TRAINING_VIEW = "workflowType=machine_learning"
LOCAL_UI = "http://127.0.0.1:5000"  # where `make ui` serves the embedded store


def ui_base(tracking_uri: str, ui_url: str | None = None) -> str | None:
    """Where the UI of this store is: the given URL, else the tracking server itself; None
    for a store of files (a UI must be started on it: `make ui`). Without the URL's user and
    password, which a reader of a link must not get."""
    if ui_url:
        return without_credentials(ui_url).rstrip("/")
    if tracking_uri.startswith(("http://", "https://")):
        return without_credentials(tracking_uri).rstrip("/")
    return None


def experiment_url(ui: str, experiment_id: str) -> str:
    """The experiment's runs table, in the model-training view."""
    return f"{ui}/#/experiments/{experiment_id}/runs?{MODEL_TRAINING_VIEW}"


def run_url(ui: str, experiment_id: str, run_id: str) -> str:
    """A run's page, in the model-training view."""
    return f"{ui}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING_VIEW}"
