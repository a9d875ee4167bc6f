"""The web app's settings from the environment: defaults, the sign-in lockout's variables, the
upload and API schema settings, and a clear error for a bad value."""

from __future__ import annotations

import datetime as dt

import pytest

from peerlens import PeerlensError
from peerlens.study import SignInLimits
from peerlens.web import WebSettings

LOCKOUT = ("PEERLENS_WEB_LOCKOUT_MINUTES", "PEERLENS_WEB_LOCKOUT_PER_USER")


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*LOCKOUT, "PEERLENS_WEB_LOCKOUT_PER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)


def test_the_lockout_defaults_are_the_study_apis() -> None:
    assert WebSettings.from_env().sign_in == SignInLimits()
    assert WebSettings().sign_in == SignInLimits()


def test_the_lockout_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERLENS_WEB_LOCKOUT_MINUTES", "60")
    monkeypatch.setenv("PEERLENS_WEB_LOCKOUT_PER_USER", "3")
    monkeypatch.setenv("PEERLENS_WEB_LOCKOUT_PER_ADDRESS", " 50 ")
    limits = WebSettings.from_env().sign_in
    assert limits == SignInLimits(dt.timedelta(hours=1), max_per_user=3, max_per_address=50)


@pytest.mark.parametrize("name", LOCKOUT)
@pytest.mark.parametrize("value", ["0", "-1", "five", "2.5"])
def test_a_bad_lockout_value_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(PeerlensError, match=f"{name}='{value}': give a whole number from 1 up"):
        WebSettings.from_env()


def test_the_upload_age_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEERLENS_WEB_UPLOAD_MAX_AGE_HOURS", raising=False)
    assert WebSettings.from_env().upload_max_age == dt.timedelta(hours=24)
    monkeypatch.setenv("PEERLENS_WEB_UPLOAD_MAX_AGE_HOURS", "6")
    assert WebSettings.from_env().upload_max_age == dt.timedelta(hours=6)
    monkeypatch.setenv("PEERLENS_WEB_UPLOAD_MAX_AGE_HOURS", "0")
    with pytest.raises(PeerlensError, match="PEERLENS_WEB_UPLOAD_MAX_AGE_HOURS='0'"):
        WebSettings.from_env()


def test_the_api_schema_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PEERLENS_WEB_API_SCHEMA", raising=False)
    assert WebSettings.from_env().api_schema is True
    for value, expected in (("off", False), (" NO ", False), ("on", True), ("1", True)):
        monkeypatch.setenv("PEERLENS_WEB_API_SCHEMA", value)
        assert WebSettings.from_env().api_schema is expected, value
    monkeypatch.setenv("PEERLENS_WEB_API_SCHEMA", "private")
    with pytest.raises(PeerlensError, match="PEERLENS_WEB_API_SCHEMA='private': give on or off"):
        WebSettings.from_env()


def test_the_thread_count_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEERLENS_WEB_THREADS", raising=False)
    assert WebSettings.from_env().threads == 8
    monkeypatch.setenv("PEERLENS_WEB_THREADS", "12")
    assert WebSettings.from_env().threads == 12
    monkeypatch.setenv("PEERLENS_WEB_THREADS", "0")
    with pytest.raises(PeerlensError, match="PEERLENS_WEB_THREADS='0'"):
        WebSettings.from_env()
