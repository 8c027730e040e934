"""`make demo`: the printed credentials log in."""

from __future__ import annotations

import re

from idp.app import create_app
from idp.demo import prepare_demo
from tests.support.pages import Browser


def test_demo_prints_credentials_that_log_in(tmp_path):
    settings, lines = prepare_demo(tmp_path / "demo", "http://127.0.0.1:8080")
    assert settings.redis.url == ""
    assert settings.database_url.startswith("sqlite:///")
    printed = [re.match(r"\s+(\w+)\s+(\S+)\s+password (\S+)", line) for line in lines]
    credentials = [(m.group(2), m.group(3)) for m in printed if m]
    assert len(credentials) == 4
    app = create_app(settings)
    for username, password in credentials:
        page = Browser(app.test_client()).login(username, password)
        assert page.status == 303, username
        if username == "giulia.verdi":
            assert page.location.startswith("/login?flow=")  # temporary password: change it first
        else:
            assert page.location == "/account"
    app.extensions["varco"].db.dispose()


def test_demo_can_be_prepared_again_from_scratch(tmp_path):
    prepare_demo(tmp_path / "demo", "http://127.0.0.1:8080")
    settings, lines = prepare_demo(tmp_path / "demo", "http://127.0.0.1:8081")
    assert settings.server.issuer == "http://127.0.0.1:8081"
    assert any("mario.rossi" in line for line in lines)
