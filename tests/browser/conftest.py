"""A real Chromium (Debian's /usr/bin/chromium) driven by Playwright against a live Varco."""

from __future__ import annotations

import pytest

from tests.support.live import LiveServer


@pytest.fixture
def live(app):
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def page(chromium):
    context = chromium.new_context(locale="it-IT")
    page = context.new_page()
    yield page
    context.close()
