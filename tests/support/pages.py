"""A thin driver of Varco's HTML forms over any WSGI or HTTP client: finds forms and their tokens."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

FORM = re.compile(r'<form method="post" action="([^"]+)"', re.S)
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ALERT = re.compile(r'role="alert"[^>]*>(.*?)</(?:p|div)>', re.S)


@dataclass
class Page:
    status: int
    text: str
    location: str | None = None

    @property
    def action(self) -> str:
        return html.unescape(FORM.search(self.text).group(1))

    @property
    def token(self) -> str:
        return TOKEN.search(self.text).group(1)

    @property
    def alerts(self) -> str:
        """All text announced as an alert, tags stripped."""
        found = " ".join(ALERT.findall(self.text))
        return html.unescape(re.sub(r"<[^>]+>", " ", found)).strip()


class Browser:
    """Follows redirects by hand so tests can see each hop."""

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        self.client = client

    def get(self, url: str, **kwargs) -> Page:  # type: ignore[no-untyped-def]
        response = self.client.get(url, **kwargs)
        return Page(response.status_code, response.get_data(as_text=True), response.headers.get("Location"))

    def post(self, url: str, data: dict, **kwargs) -> Page:  # type: ignore[no-untyped-def]
        response = self.client.post(url, data=data, **kwargs)
        return Page(response.status_code, response.get_data(as_text=True), response.headers.get("Location"))

    def follow(self, page: Page, limit: int = 5) -> Page:
        while page.status in (301, 302, 303, 307) and limit:
            page = self.get(page.location)
            limit -= 1
        return page

    def open_login(self, url: str = "/login") -> Page:
        return self.follow(self.get(url))

    def submit(self, page: Page, **fields: str) -> Page:
        return self.post(page.action, {"csrf_token": page.token, **fields})

    def login(self, username: str, password: str, **extra: str) -> Page:
        return self.submit(self.open_login(), username=username, password=password, **extra)
