"""Serving the review app: loopback by default, a token required for any other address."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

from ..errors import CPQAError, require
from .app import LOOPBACK_NAMES, create_app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve anywhere
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def check_bind(host: str, token: str | None) -> None:
    """Refuse to expose the app beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise CPQAError(f"binding to {host} exposes the review app to the network: give --token "
                        "(or let `cpqa review` generate one), or bind to 127.0.0.1")


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, token: str | None = None) -> None:
    """Serve the review app of `run_dir` until interrupted."""
    check_bind(host, token)
    uvicorn = require("uvicorn", "review")
    app = create_app(run_dir, token, LOOPBACK_NAMES if is_loopback(host) else ("*",))
    uvicorn.run(app, host=host, port=port, log_level="warning")
