"""`make services`: a throwaway stack for runs on many machines, started on this one:
PostgreSQL (databases `mlflow` and `optuna`), an MLflow tracking server on it that proxies
the artifacts (workers need no shared folder), and a Ray head. Everything lives under one
folder (`.services/`, which git ignores): data, logs, pid files and credentials.

`up` starts what is not running and reuses what is, then prints the environment lines to
use; `down` stops all three and keeps their data, so the next `up` finds the same runs and
studies. The services listen on `--host` (127.0.0.1 by default; give this machine's address
for other machines to join the Ray head and reach the stores). Nothing listens past loopback
without a secret: PostgreSQL asks for a password, Ray for a token, and the MLflow server
(on any host but loopback, or with `--auth`) for a user and password, each generated at its
first start and kept in the folder (mode 600). Needs aevae's `cluster` extra.

    python deploy/services.py up [--host H] [--auth] [--folder F]      # make services
    python deploy/services.py down [--folder F]                         # make services-down
"""

from __future__ import annotations

import argparse
import configparser
import io
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from aevae.errors import AevaeError
from aevae.extras import require

FOLDER = ".services"
POSTGRES_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/*/bin")  # where distributions put initdb
START_TIMEOUT_S = 120  # MLflow migrates an empty database on its first start
EXTRA_MODULES = ("psycopg2", "ray", "flask_wtf")  # the cluster extra: the driver, Ray, MLflow's auth app
MLFLOW_USER = "aevae"  # the auth app's admin: the one user the stack's clients log in as
# any REST call would do: the auth app answers 401 to each one without credentials
MLFLOW_PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"


class ServiceError(AevaeError):
    """A service of the local stack that cannot be started."""


@dataclass(frozen=True)
class Stack:
    folder: Path
    host: str = "127.0.0.1"
    postgres_port: int = 5432
    mlflow_port: int = 5000
    ray_port: int = 6379
    auth: bool = False  # the MLflow server asks for a user and password on loopback too

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(socket.gethostbyname(self.host)).is_loopback

    @property
    def authenticated(self) -> bool:
        """Whether the MLflow server asks for a user and password: always when other machines
        can reach it, as the other services ask for theirs."""
        return self.auth or not self.loopback

    def postgres_url(self, database: str) -> str:
        password = (self.folder / "postgres" / "password").read_text().strip()
        return f"postgresql://postgres:{password}@{self.host}:{self.postgres_port}/{database}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def ray_address(self) -> str:
        return f"{self.host}:{self.ray_port}"


def _bin(name: str) -> str:
    """A PostgreSQL program, from PATH or where distributions install it."""
    found = shutil.which(name)
    for folder in POSTGRES_DIRS:
        found = found or next((str(p) for p in sorted(Path("/").glob(f"{folder.lstrip('/')}/{name}"))), None)
    if found is None:
        raise ServiceError(f"PostgreSQL's {name} is not installed: install the PostgreSQL server "
                           f"(apt-get install postgresql) or put its bin folder on PATH.")
    return found


def _as_server_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, its programs run as user `postgres`."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise ServiceError("running as root needs runuser to start PostgreSQL as the postgres user.")
    return ["runuser", "-u", "postgres", "--"]


def _postgres(stack: Stack, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*_as_server_user(), *args], capture_output=True, text=True, check=check)


def postgres_up(stack: Stack) -> None:
    """Create the cluster on the first call, start it unless it runs, create the databases."""
    folder = stack.folder / "postgres"
    data = folder / "data"
    if not (data / "PG_VERSION").exists():
        folder.mkdir(parents=True, exist_ok=True)
        password = folder / "password"
        password.write_text(secrets.token_urlsafe(18))
        password.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
            shutil.chown(password, "postgres", "postgres")
        _postgres(stack, _bin("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", f"--pwfile={password}", "--no-sync")
        if not stack.loopback:  # other machines of the cluster connect too
            with (data / "pg_hba.conf").open("a") as hba:
                hba.write("host all all samenet scram-sha-256\n")
    if _postgres(stack, _bin("pg_ctl"), "-D", str(data), "status", check=False).returncode != 0:
        _postgres(stack, _bin("pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "start",
                  # an MLflow server's workers and every Optuna worker (with its heartbeat thread)
                  # each hold a pool of connections: PostgreSQL's default 100 ran out in a test
                  "-o", f"-h {stack.host} -p {stack.postgres_port} -k {folder} -c max_connections=400")
    psycopg2 = require("psycopg2", "make services")  # the server must be up first
    connection = psycopg2.connect(stack.postgres_url("postgres"))
    connection.autocommit = True
    with connection.cursor() as cursor:
        for database in ("mlflow", "optuna"):
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(f"CREATE DATABASE {database}")
    connection.close()


def postgres_down(stack: Stack) -> bool:
    data = stack.folder / "postgres" / "data"
    if not (data / "postmaster.pid").exists():
        return False
    _postgres(stack, _bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop", check=False)
    return True


def _running(pid_file: Path) -> int | None:
    """The pid the file names, if that process still runs."""
    try:
        pid = int(pid_file.read_text())
        return pid if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE else None
    except (OSError, ValueError, psutil.Error):
        return None


def _start(command: list[str], name: str, stack: Stack, env: dict[str, str] | None = None) -> int:
    """A service in a session of its own (Ctrl-C in this terminal does not reach it)."""
    log = (stack.folder / f"{name}.log").open("ab")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, env={**os.environ, **(env or {})})
    (stack.folder / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def _wait(ready, what: str, stack: Stack, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        if _running(stack.folder / f"{name}.pid") is None:
            break
        time.sleep(0.5)
    raise ServiceError(f"{what} did not start; its log is {stack.folder / f'{name}.log'}.")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _listens(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _secret_file(path: Path, text: str) -> None:
    """A new file that only its owner can read, from its first byte."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(text)


def mlflow_auth_config(stack: Stack) -> Path:
    """The config of MLflow's basic-auth app (MLFLOW_AUTH_CONFIG_PATH), written at the first
    start with a generated admin password, which makes it a secret (mode 600); its users live
    in a SQLite file beside it, as secret (password hashes). Nobody reads anything without
    logging in; a user the admin adds later may read every run and write none until granted
    more."""
    path = (stack.folder / "mlflow-auth.ini").resolve()
    if not path.exists():
        users = path.with_suffix(".db")
        if not users.exists():
            _secret_file(users, "")  # an empty file is an empty database; SQLite keeps its mode
        config = configparser.ConfigParser(interpolation=None)
        config["mlflow"] = {"database_uri": f"sqlite:///{users}", "default_permission": "READ",
                            "admin_username": MLFLOW_USER, "admin_password": secrets.token_urlsafe(18)}
        text = io.StringIO()
        config.write(text)
        _secret_file(path, text.getvalue())
    return path


def mlflow_credentials(stack: Stack) -> dict[str, str]:
    """What MLflow's client needs to log in to the stack's server, as environment variables."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(mlflow_auth_config(stack))
    return {"MLFLOW_TRACKING_USERNAME": config["mlflow"]["admin_username"],
            "MLFLOW_TRACKING_PASSWORD": config["mlflow"]["admin_password"]}


def asks_login(stack: Stack) -> bool:
    """Whether the MLflow server refuses a request without credentials."""
    try:
        with urllib.request.urlopen(f"{stack.mlflow_url}{MLFLOW_PROBE}", timeout=5):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 401


def mlflow_up(stack: Stack) -> None:
    if _running(stack.folder / "mlflow.pid") and _answers(f"{stack.mlflow_url}/health"):
        locked = asks_login(stack)
        if locked and not stack.authenticated:
            raise ServiceError(f"the MLflow server under {stack.folder} runs with authentication: pass --auth, "
                               f"or stop the stack first (make services-down).")
        if stack.authenticated and not locked:
            raise ServiceError(f"the MLflow server under {stack.folder} runs without authentication: stop the "
                               f"stack first (make services-down), then start it again.")
        return
    backend = stack.postgres_url("mlflow").replace("postgresql://", "postgresql+psycopg2://")
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", backend,
               "--serve-artifacts", "--artifacts-destination", str((stack.folder / "artifacts").resolve()),
               "--host", stack.host, "--port", str(stack.mlflow_port), "--workers", "2"]
    if not stack.loopback:
        command += ["--allowed-hosts", f"{stack.host},{stack.host}:{stack.mlflow_port}"]
    # aevae runs no server-side jobs (they serve MLflow's GenAI features); without them the
    # server is three processes instead of a dozen, and stops at once
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    if stack.authenticated:
        command += ["--app-name", "basic-auth"]
        # the key signs only the CSRF tokens of the auth app's sign-up form: a new one at each
        # start voids no more than a form left open across a restart
        env |= {"MLFLOW_AUTH_CONFIG_PATH": str(mlflow_auth_config(stack)),
                "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(32)}
    _start(command, "mlflow", stack, env)
    _wait(lambda: _answers(f"{stack.mlflow_url}/health"), "the MLflow server", stack, "mlflow")


def ray_token(stack: Stack) -> Path:
    """The token every driver and node of the cluster shows the head (Ray's token
    authentication), made at the first start; absolute, for the environment lines."""
    token = (stack.folder / "ray-auth-token").resolve()
    if not token.exists():
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    return token


def ray_up(stack: Stack) -> None:
    if _running(stack.folder / "ray.pid") and _listens(stack.host, stack.ray_port):
        return
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--node-ip-address", stack.host,
               "--port", str(stack.ray_port), "--temp-dir", str((stack.folder / "ray").resolve()),
               "--include-dashboard", "false", "--disable-usage-stats", "--block"]
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(ray_token(stack))}
    if stack.authenticated:
        # the head's workers inherit them: cells that run there log to the MLflow server
        env |= mlflow_credentials(stack)
    if stack.loopback:
        # Ray resolves 127.0.0.1 to the machine's address unless it takes clusters for
        # disabled, which this variable says: a head for this machine alone stays on loopback.
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    _start(command, "ray", stack, env)
    _wait(lambda: _listens(stack.host, stack.ray_port), "the Ray head", stack, "ray")


def _stop(stack: Stack, name: str, first: signal.Signals) -> bool:
    """`first` to the service's session (SIGINT makes `ray start --block` stop its children;
    MLflow's server stops on SIGTERM), then SIGKILL to what is left."""
    pid = _running(stack.folder / f"{name}.pid")
    if pid is None:
        return False
    for sig in (first, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _running(stack.folder / f"{name}.pid"):
            time.sleep(0.2)
        if not _running(stack.folder / f"{name}.pid"):
            break
    (stack.folder / f"{name}.pid").unlink(missing_ok=True)
    return True


def env_lines(stack: Stack) -> list[str]:
    credentials = mlflow_credentials(stack) if stack.authenticated else {}
    login = "".join(f" {name}={value}" for name, value in credentials.items())
    return [f"export MLFLOW_TRACKING_URI={stack.mlflow_url}{login}",
            f"export RAY_ADDRESS={stack.ray_address} RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={ray_token(stack)}",
            f"export STUDY_STORAGE={stack.postgres_url('optuna')}  # make tune; aevae tune --storage \"$STUDY_STORAGE\""]


def up(stack: Stack) -> None:
    for module in EXTRA_MODULES:
        require(module, "make services")
    stack.folder.mkdir(parents=True, exist_ok=True)
    postgres_up(stack)
    mlflow_up(stack)
    ray_up(stack)
    login = f" (user {MLFLOW_USER}, password in the lines below)" if stack.authenticated else ""
    print(f"services up under {stack.folder}/: PostgreSQL {stack.host}:{stack.postgres_port}, "
          f"MLflow {stack.mlflow_url}{login}, Ray head {stack.ray_address}. To use them:")
    print("\n".join(env_lines(stack)))


def down(stack: Stack) -> None:
    stopped = [name for name, stop in (("Ray head", lambda: _stop(stack, "ray", signal.SIGINT)),
                                       ("MLflow server", lambda: _stop(stack, "mlflow", signal.SIGTERM)),
                                       ("PostgreSQL", lambda: postgres_down(stack))) if stop()]
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}; data kept in {stack.folder}/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python deploy/services.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--folder", default=FOLDER, help=f"where the stack lives (default: {FOLDER})")
    parser.add_argument("--host", default="127.0.0.1", help="address every service listens on")
    parser.add_argument("--auth", action="store_true",
                        help="the MLflow server asks for a user and password on 127.0.0.1 too (always elsewhere)")
    parser.add_argument("--postgres-port", type=int, default=5432)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--ray-port", type=int, default=6379)
    args = parser.parse_args(argv)
    stack = Stack(Path(args.folder).resolve(), args.host, args.postgres_port, args.mlflow_port, args.ray_port,
                  args.auth)
    try:
        up(stack) if args.action == "up" else down(stack)
    except (AevaeError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip().splitlines()[-1] if isinstance(exc, subprocess.CalledProcessError) and exc.stderr else ""
        print(f"aevae services: error: {exc}{' (' + detail + ')' if detail else ''}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
