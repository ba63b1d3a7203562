"""Addresses of models served over the KServe v2 / Open Inference Protocol.

Two forms, the ones OpenVINO Model Server, Triton and KServe answer on::

    grpc://HOST:PORT/MODEL[/versions/V]
    http://HOST:PORT/v2/models/MODEL[/versions/V]      (https:// too)

Standard library only, so that the command line can tell a URL from a model file without
loading the client library (``tritonclient``, in :mod:`ovseg.remote`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["RemoteURL", "URL_FORMS", "looks_remote", "parse_remote_url"]

#: The accepted forms, as error messages name them.
URL_FORMS = "grpc://HOST:PORT/MODEL[/versions/V] or http://HOST:PORT/v2/models/MODEL[/versions/V]"

_SCHEMES = ("grpc://", "http://", "https://")
_NAME = r"[A-Za-z0-9_.\-]+"
_HOST = r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(?P<port>\d{1,5})"
_GRPC = re.compile(rf"^grpc://{_HOST}/(?P<model>{_NAME})(?:/versions/(?P<version>\d+))?/?$")
_HTTP = re.compile(rf"^(?P<scheme>https?)://{_HOST}/v2/models/(?P<model>{_NAME})(?:/versions/(?P<version>\d+))?/?$")


@dataclass(frozen=True)
class RemoteURL:
    """A served model's address.

    Attributes:
        protocol: ``"grpc"`` or ``"http"`` (``https`` is ``http`` with ``ssl``).
        host: host name or address (an IPv6 address keeps its brackets).
        port: TCP port.
        model: the model's name on the server.
        version: the model version (``""``: the server's choice, its latest).
        ssl: ``https://``.
    """

    protocol: str
    host: str
    port: int
    model: str
    version: str = ""
    ssl: bool = False

    @property
    def address(self) -> str:
        """``HOST:PORT``, what the client libraries connect to."""
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        tail = f"/versions/{self.version}" if self.version else ""
        if self.protocol == "grpc":
            return f"grpc://{self.address}/{self.model}{tail}"
        return f"{'https' if self.ssl else 'http'}://{self.address}/v2/models/{self.model}{tail}"


def looks_remote(text: object) -> bool:
    """Whether ``text`` is meant as a served model's URL (``grpc://``, ``http(s)://``), right or not."""
    return isinstance(text, str) and text.lower().startswith(_SCHEMES)


def parse_remote_url(text: str) -> RemoteURL:
    """Parse a served model's URL (see the module docstring).

    Raises:
        ConfigError: ``text`` is not of one of the two forms (the message names them).
    """
    match = _GRPC.match(text) or _HTTP.match(text)
    port = int(match["port"]) if match else 0
    if match is None or not 0 < port < 65536:
        raise ConfigError(f"expected a model URL {URL_FORMS}, got {text!r}")
    scheme = match.groupdict().get("scheme") or "grpc"
    return RemoteURL(
        protocol="grpc" if scheme == "grpc" else "http",
        host=match["host"],
        port=port,
        model=match["model"],
        version=match["version"] or "",
        ssl=scheme == "https",
    )
