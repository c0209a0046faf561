"""The tracking store, checked once before any work starts, and opened safely.

`check_store` answers within a few seconds and creates nothing: the URI's scheme is one
MLflow serves; a SQLite store's file is a SQLite database (or can be created in a writable
folder); a server or database answers on its port within CHECK_TIMEOUT_S, and a tracking
server answers an MLflow request with no retries. Without it, MLflow retries a SQLite engine
for ~100 s and an unreachable server for ~4 min before a chain of tracebacks.

`open_client` serialises the first opening of a SQLite store between processes with a lock
file beside the database: MLflow creates its tables on first use, and two processes doing
so at once fail with "table ... already exists".

`lost` tells a store that went away mid-command (a deleted SQLite file, a server that
stopped answering), so a grid stops with one sentence instead of failing every cell.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from aevae.errors import AevaeError, debugging
from aevae.extras import require
from aevae.folders import check_writable
from aevae.redact import redact
from aevae.tracking.tracker import default_tracking_uri

CHECK_TIMEOUT_S = 3  # seconds a server or database may take to accept a connection
LOCK_WAIT_S = 300  # another process creating the tables (seconds, under load) holds the lock
SERVER_PORTS = {"http": 80, "https": 443}
DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
SQLITE_HEADER = b"SQLite format 3\x00"
LOGIN = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")  # read by MLflow's client
HINT = "check --tracking-uri or MLFLOW_TRACKING_URI"
VALID = ("sqlite:///path/mlflow.db, http(s)://host:port of a tracking server, or a "
         "postgresql+psycopg2:// (mysql://, mssql://) database URL")


class StoreError(AevaeError):
    """A tracking store that is not there, cannot be written, or does not answer."""


class StoreLost(StoreError):
    """A tracking store that went away while a command was using it."""


def scheme(tracking_uri: str) -> str:
    """'sqlite', 'http', 'postgresql', ... ('postgresql+psycopg2' counts as 'postgresql');
    '' for a plain path."""
    return tracking_uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in tracking_uri else ""


def driver(tracking_uri: str) -> str:
    """The driver a database URI names ('psycopg2' of 'postgresql+psycopg2://'); '' for none."""
    return tracking_uri.split("://", 1)[0].partition("+")[2].lower() if "://" in tracking_uri else ""


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (relative after three slashes, absolute after
    four), or None for any other store."""
    if scheme(tracking_uri) != "sqlite":
        return None
    path = tracking_uri.split("://", 1)[1].removeprefix("/").split("?", 1)[0]
    return Path(path) if path not in ("", ":memory:") else None


def check_store(tracking_uri: str | None = None, *, write: bool = True) -> str:
    """The tracking URI to use (default: `default_tracking_uri()`), checked as the module
    says; raises StoreError with one sentence naming the store (its password masked). With
    `write=False` (the report) a SQLite store must exist, and its folder may be read-only."""
    uri = default_tracking_uri() if tracking_uri is None else tracking_uri
    if not uri.strip():
        raise StoreError(f"the MLflow tracking URI is empty; give {VALID} ({HINT}).")
    kind = scheme(uri)
    if kind == "sqlite":
        _check_sqlite(uri, write)
    elif kind in SERVER_PORTS:
        _reach(uri, SERVER_PORTS[kind], "MLflow tracking server")
        _ask_server(uri)
    elif kind in DATABASE_PORTS:
        if kind == "postgresql" and driver(uri) in ("", "psycopg2"):
            require("psycopg2", "an MLflow store on PostgreSQL")
        _reach(uri, DATABASE_PORTS[kind], "database of the MLflow store")
        _connect_database(uri)
    elif kind in ("", "file"):
        folder = uri.split("://", 1)[1] if kind else uri
        check_writable(folder, "the MLflow file store", "--tracking-uri (or MLFLOW_TRACKING_URI)")
    elif kind != "databricks":
        raise StoreError(f"'{redact(uri)}' is no MLflow tracking URI (unknown scheme '{kind}'); "
                         f"give {VALID}.")
    return uri


def _check_sqlite(uri: str, write: bool) -> None:
    path = sqlite_path(uri)
    if path is None:
        raise StoreError(f"'{uri}' is a SQLite store in memory, which keeps nothing after the "
                         f"command; give a file: sqlite:///path/mlflow.db.")
    if path.is_dir():
        raise StoreError(f"the MLflow store {path} is a folder, not a SQLite file; name the "
                         f"database file in it, e.g. sqlite:///{path}/mlflow.db.")
    if path.is_file():
        try:
            with path.open("rb") as f:
                header = f.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise StoreError(f"the MLflow store {path} cannot be read ({os.strerror(exc.errno or 0)}); "
                             f"{HINT}.") from None
        if header and header != SQLITE_HEADER:
            raise StoreError(f"{path} is not a SQLite database, so it cannot be an MLflow store; "
                             f"{HINT}.")
    elif not write:
        raise StoreError(f"there is no MLflow store at {path}: run `make bench` first, or pass "
                         f"--tracking-uri (or set MLFLOW_TRACKING_URI).")
    if not write:
        return
    # SQLite writes a journal beside the database, so the folder must take new files.
    check_writable(path.parent, "the folder of the MLflow store", "--tracking-uri (or MLFLOW_TRACKING_URI)")


def _reach(uri: str, default_port: int, what: str) -> None:
    """Connect to the URI's host and port within CHECK_TIMEOUT_S, or raise StoreError."""
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port or default_port
    except ValueError as exc:
        raise StoreError(f"'{redact(uri)}' is not a valid URL ({exc}); {HINT}.") from None
    if not host:
        raise StoreError(f"'{redact(uri)}' names no host; {HINT}.")
    try:
        socket.create_connection((host, port), timeout=CHECK_TIMEOUT_S).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise StoreError(f"cannot reach the {what} at {redact(uri)} ({reason} within "
                         f"{CHECK_TIMEOUT_S} s): start it, or {HINT}.") from None


@contextlib.contextmanager
def bounded_http(timeout_s: int = CHECK_TIMEOUT_S) -> Iterator[None]:
    """MLflow's HTTP requests without retries and with a short timeout, for the duration of
    the block (MLflow reads these variables on every request; its defaults retry ~4 min)."""
    bounded = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)}
    saved = {key: os.environ.get(key) for key in bounded}
    os.environ.update(bounded)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0][:300]) if text else type(exc).__name__


def _ask_server(uri: str) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        with bounded_http():
            MlflowClient(uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - requests, MLflow and HTTP errors alike: the server's answer
        if isinstance(exc, MlflowException) and exc.get_http_status_code() == 401:  # a server's auth app
            user, password = LOGIN
            if os.environ.get(user):
                raise StoreError(f"the MLflow tracking server at {redact(uri)} refuses the login in {user} and "
                                 f"{password}: check them (make services prints them).") from None
            raise StoreError(f"the MLflow tracking server at {redact(uri)} asks for a login: set {user} and "
                             f"{password} (make services prints them).") from None
        raise StoreError(f"the server at {redact(uri)} does not answer as an MLflow tracking server "
                         f"({_first_line(exc)}); {HINT}.") from None


def _connect_database(uri: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = create_engine(uri)
        with engine.connect():
            pass
        engine.dispose()
    except ImportError as exc:
        raise StoreError(f"the driver for {redact(uri)} is not installed ({exc}); for PostgreSQL "
                         f"name the one of aevae's cluster extra: postgresql+psycopg2://...") from None
    except (SQLAlchemyError, ValueError) as exc:
        reason = _first_line(getattr(exc, "orig", None) or exc)
        raise StoreError(f"cannot open the database of the MLflow store {redact(uri)} ({reason}); "
                         f"{HINT}.") from None


def open_client(tracking_uri: str):
    """An MlflowClient bound to the store, its tables created if missing. For SQLite, the
    opening is serialised by `<database>.lock` beside the database."""
    from filelock import FileLock, Timeout
    from mlflow import MlflowClient

    if redact(tracking_uri) != tracking_uri:
        # MLflow prints each ended run's link on a tracking server, credentials and all.
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    if not debugging():
        # MLflow logs each database error with its traceback before raising it; aevae turns
        # the error into a sentence (a failed run's reason, a lost store), so the traceback
        # is shown with --debug only.
        logging.getLogger("mlflow.store.db.utils").addFilter(_no_errors)

    path = sqlite_path(tracking_uri)
    lock = contextlib.nullcontext() if path is None else FileLock(f"{path}.lock", timeout=LOCK_WAIT_S)
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        with lock:
            client = MlflowClient(tracking_uri)
            client.search_experiments(max_results=1)  # tables exist from here on
        return client
    except Timeout:
        raise StoreError(f"the MLflow store {path} stayed locked for {LOCK_WAIT_S} s by another process "
                         f"(its lock file is {path}.lock); try again, or delete that file if no "
                         f"aevae command runs.") from None
    except Exception as exc:  # noqa: BLE001 - the store's own errors, whatever its backend
        raise StoreError(f"cannot open the MLflow store at {redact(tracking_uri)} ({_first_line(exc)}); "
                         f"{HINT}.") from None


def _no_errors(record: logging.LogRecord) -> bool:
    return record.levelno < logging.ERROR


def identity(tracking_uri: str) -> tuple[int, int] | None:
    """What tells a SQLite store's file from a new one at the same path: (device, inode)."""
    path = sqlite_path(tracking_uri)
    try:
        stat = path.stat() if path is not None else None
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino) if stat is not None else None


def lost(tracking_uri: str, opened: tuple[int, int] | None) -> str | None:
    """Why the store opened as `opened` (see `identity`) is gone, or None if it is still
    there: its SQLite file deleted or replaced, or its server not answering."""
    path = sqlite_path(tracking_uri)
    if path is not None:
        now = identity(tracking_uri)
        if now is None:
            return f"its file {path} was deleted"
        return f"its file {path} was replaced" if opened is not None and now != opened else None
    kind = scheme(tracking_uri)
    port = SERVER_PORTS.get(kind) or DATABASE_PORTS.get(kind)
    if port is None:
        return None
    try:
        _reach(tracking_uri, port, "store")
    except StoreError:
        return "it stopped answering on its port"
    return None
