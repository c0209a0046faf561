import mlflow
import pytest

from aevae.cli import main

TINY = ["--epochs", "1", "--val-size", "100", "--hidden-dim", "32", "--latent-dim", "4"]


def test_train_command_tracks_a_run(data_root, tracking_uri, capsys):
    assert main(["train", "--model", "ae", "--dataset", "fashion_mnist", "--experiment", "cli", *TINY]) == 0
    assert "test: loss=" in capsys.readouterr().out
    client = mlflow.MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("cli").experiment_id])
    assert run.data.params["dataset"] == "fashion_mnist" and run.info.status == "FINISHED"


@pytest.mark.parametrize("args,message", [
    (["--model", "gan"], "unknown model 'gan'; valid models: ae, vae, or a reference module:Class or "
                         "path/file.py:Class."),
    (["--dataset", "svhn"], "unknown dataset 'svhn'; valid datasets: cifar10, fashion_mnist, mnist, or a file "
                            "path (.npz) or a folder."),
    (["--epochs", "many"], "config field 'epochs' expects int, got 'many'."),
    (["--device", "tpu"], "device must be 'auto', 'cpu' or 'cuda'."),
])
def test_bad_input_is_one_line_without_traceback(args, message, capsys):
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"aevae train: error: {message}"


def test_offline_missing_data_is_one_line(tmp_path, monkeypatch, capsys):
    from conftest import register

    register(monkeypatch, "mnist", {})
    assert main(["train", "--data-dir", str(tmp_path / "nothing"), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    # pooch may announce its download attempt; the error itself is one line, no traceback
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("aevae train: error: MNIST needs train-images-idx3-ubyte.gz")
