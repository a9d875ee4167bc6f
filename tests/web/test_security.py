"""CSRF tokens: bound to one link and one secret, checked in constant time."""

from __future__ import annotations

from peerlens.web.security import csrf_token, csrf_valid, security_headers


def test_a_csrf_token_fits_only_its_link_and_secret() -> None:
    token = csrf_token(b"k1", "link-a")
    assert csrf_valid(b"k1", "link-a", {"csrf": token})
    assert not csrf_valid(b"k1", "link-b", {"csrf": token})
    assert not csrf_valid(b"k2", "link-a", {"csrf": token})
    assert not csrf_valid(b"k1", "link-a", {})
    assert not csrf_valid(b"k1", "link-a", {"csrf": ""})
    assert "link-a" not in token


def test_static_files_may_be_cached_pages_may_not() -> None:
    assert "Cache-Control" not in security_headers("/static/peerlens.css", hsts=False)
    assert security_headers("/", hsts=True)["Strict-Transport-Security"].startswith("max-age=")
