"""Secrets, masked wherever text is shown or logged: error messages, run tags and params, the
report, the summary. A tracking URI or an Optuna storage URL may carry a password
(`http://user:password@host`, `postgresql://user:password@host/db`); the password is needed to
connect, so the URL is kept whole where it is used and passed through `redact` where it is
shown. A tracking server's credentials may instead come from the environment
(MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_TOKEN, read by MLflow's client); their values are
masked wherever they appear. Imports nothing heavy: the CLI's error path and every tracker use it.
"""

from __future__ import annotations

import os
import re

MASK = "***"
SECRET_VARIABLES = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
# A value this short would mask ordinary words in every tag; MLflow's basic-auth refuses
# passwords under 12 characters, and tokens are longer still.
MIN_SECRET_CHARS = 8

# scheme://user:password@host : the password runs to the '@' after which only a host follows
# (no other '@' or '/' before the path, query or end), so a password holding an unescaped '@'
# or '/' is masked whole.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*):"
                       r"(?P<secret>[^\s@/]*(?:[@/][^\s@/]*)*?)@(?=[^\s@/]*(?:[/?#\s]|$))")
# ?password=...&token=... in a query string (some drivers take credentials there)
_QUERY = re.compile(r"(?P<head>[?&;](?:password|passwd|pwd|token|access_token|secret|api_key|apikey)=)"
                    r"(?P<secret>[^&;#\s'\"]*)", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the password of every URL in it, every credential in a query string, and
    the value of each of SECRET_VARIABLES set in the environment replaced by ***. Text
    without any of them comes back unchanged."""
    for variable in SECRET_VARIABLES:
        secret = os.environ.get(variable, "")
        if len(secret) >= MIN_SECRET_CHARS and secret in text:
            text = text.replace(secret, MASK)
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _QUERY.sub(lambda m: f"{m['head']}{MASK}" if m["secret"] else m[0], text)


def without_credentials(url: str) -> str:
    """The URL with its user and password removed, for links a reader follows
    (`http://user:pw@host:5000` -> `http://host:5000`)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s]*@", r"\1", url)
