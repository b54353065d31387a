"""The request as a WSGI environ holds it, read the same way by the WSGI and Flask shells."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ._request import RequestInfo, RequestView

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
else:
    WSGIEnvironment = Any


class EnvironHeaders(Mapping[str, str]):
    """The request's headers by lower-case name, read from the WSGI environ on demand."""

    __slots__ = ("_environ",)

    def __init__(self, environ: WSGIEnvironment) -> None:
        self._environ = environ

    @staticmethod
    def _key(name: str) -> str:
        key = name.upper().replace("-", "_")
        return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return str(value)

    def get(self, name: str, default: Any = None) -> Any:
        """Without a KeyError for an absent header: the usual case, on every request."""
        value = self._environ.get(self._key(name))
        return default if value is None or value == "" else str(value)

    def __iter__(self) -> Iterator[str]:
        for key, value in self._environ.items():
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").lower()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                yield key.replace("_", "-").lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)


def request_info(environ: WSGIEnvironment) -> RequestInfo:
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    return RequestInfo(
        method=str(environ.get("REQUEST_METHOD", "GET")),
        path=path or "/",
        headers=EnvironHeaders(environ),
    )


class EnvironView(RequestView):
    """The request's headers, read from the WSGI environ once."""

    __slots__ = ("environ",)

    def __init__(self, environ: WSGIEnvironment) -> None:
        self.cookie = environ.get("HTTP_COOKIE")
        self.authorization = environ.get("HTTP_AUTHORIZATION")
        self._info = None
        self.environ = environ

    def host(self) -> str | None:
        environ = self.environ
        host: str | None = environ.get("HTTP_HOST") or environ.get("SERVER_NAME")
        return host

    def _build_info(self) -> RequestInfo:
        return request_info(self.environ)
