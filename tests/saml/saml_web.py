"""Drive Varco's SAML endpoints as a browser would, hop by hop, between real SP libraries."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from idp.saml.registry import SpPolicy
from tests.support.pages import Browser, Page

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
FORM = re.compile(r'<form method="post" action="([^"]+)" id="saml-continue">')
LINK = re.compile(r'<a id="saml-continue" class="button primary" href="([^"]+)">')
FRAME = re.compile(r'<iframe src="([^"]+)" hidden')
PASSWORD = "Correct-Horse-9"
RELEASE = ("eduPersonPrincipalName", "mail", "displayName", "eduPersonAffiliation", "schacPersonalUniqueID")


@dataclass
class Posted:
    """What the auto-submitting page would POST, and where."""

    action: str
    fields: dict[str, str]

    @property
    def saml_response(self) -> str:
        return self.fields["SAMLResponse"]


def posted_form(page: Page | str) -> Posted:
    if isinstance(page, Page):
        assert page.status == 200, (page.status, page.text[:500])
        page = page.text
    found = FORM.search(page)
    assert found, page[:1000]
    fields = {html.unescape(k): html.unescape(v) for k, v in HIDDEN.findall(page)}
    return Posted(html.unescape(found.group(1)), fields)


def continue_link(page: Page | str) -> str:
    text = page.text if isinstance(page, Page) else page
    found = LINK.search(text)
    assert found, text[:1000]
    return html.unescape(found.group(1))


def frames(page: Page | str) -> list[str]:
    return [html.unescape(src) for src in FRAME.findall(page.text if isinstance(page, Page) else page)]


def local(url: str) -> str:
    """The path and query of one of Varco's own absolute URLs, for the test client."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def query_dict(raw_query: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(raw_query).items()}


def register(app, metadata: bytes, **policy) -> None:
    """Register an SP through the same registry the CLI uses."""
    values = {"release": RELEASE, **policy}
    app.extensions["varco_saml"].registry.add(metadata, SpPolicy(**values), source="test")


def login_through(browser: Browser, page: Page, username: str = "mario.rossi", password: str = PASSWORD) -> Page:
    """From Varco's redirect into the login flow to the page the flow returns to (followed)."""
    assert page.status == 303 and page.location.startswith("/login?flow="), (page.status, page.location)
    form = browser.follow(page)
    assert 'name="password"' in form.text
    done = browser.submit(form, username=username, password=password)
    assert done.status == 303, done.alerts
    return browser.follow(done)
