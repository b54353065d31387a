"""What a skip_persistence predicate sees, the same from ASGI and WSGI."""

from __future__ import annotations

from lazysession._asgi import request_info as asgi_info
from lazysession.wsgi import request_info as wsgi_info


def test_asgi_headers_are_read_by_lower_case_name_and_joined() -> None:
    info = asgi_info(
        {
            "method": "POST",
            "path": "/api",
            "headers": [(b"Authorization", b"Bearer t"), (b"x-a", b"1"), (b"X-A", b"2")],
        }
    )
    assert (info.method, info.path) == ("POST", "/api")
    assert info.headers["authorization"] == "Bearer t"
    assert info.headers.get("X-A") == "1, 2"
    assert info.headers.get("missing") is None
    assert list(info.headers) == ["authorization", "x-a"]
    assert len(info.headers) == 2


def test_wsgi_headers_are_read_from_the_environ() -> None:
    info = wsgi_info(
        {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "/app",
            "PATH_INFO": "/api",
            "HTTP_AUTHORIZATION": "Bearer t",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": "",
        }
    )
    assert (info.method, info.path) == ("GET", "/app/api")
    assert info.headers["Authorization"] == "Bearer t"
    assert info.headers.get("content-type") == "application/json"
    assert info.headers.get("content-length") is None
    assert sorted(info.headers) == ["authorization", "content-type"]
