"""SMS delivery for one-time codes, behind one small interface.

`HttpSmsGateway` posts to whatever HTTP API the operator's SMS provider offers, shaped by a JSON
template from the configuration; `FileSmsGateway` writes messages to a file for demos and tests.
Callers catch `SmsError` only; neither the message text (it holds the code) nor the gateway URL
(it may hold an API key) ever appears in an error or a log line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 5.0
_PLACEHOLDER = re.compile(r"\{(to|text)\}")
_SEPARATORS = re.compile(r"[\s\-.()/]")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")  # ITU-T E.164: at most 15 digits; fewer than 8 is no subscriber number
_COUNTRY_PREFIX = re.compile(r"\+[1-9][0-9]{0,2}")


class SmsError(Exception):
    """The message could not be handed to the gateway."""


class SmsGateway(Protocol):
    name: str

    def send(self, phone: str, text: str) -> None: ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would re-send (or silently drop) the message body elsewhere; treat it as a failure.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class HttpSmsGateway:
    """POSTs a JSON body built from `template`, e.g. '{"to": {to}, "message": {text}}'."""

    name = "http"

    def __init__(self, url: str, template: str, token: str = "", timeout: float = HTTP_TIMEOUT_SECONDS) -> None:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise ValueError("SMS gateway URL must be an absolute http:// or https:// URL")
        placeholders = set(_PLACEHOLDER.findall(template))
        if placeholders != {"to", "text"}:
            raise ValueError("SMS gateway template must contain both {to} and {text}")
        try:
            json.loads(fill_template(template, to="+390000000000", text='sample "text" {x}'))
        except ValueError as exc:
            raise ValueError(f"SMS gateway template is not valid JSON once filled: {exc}") from exc
        self.url = url
        self.template = template
        self.token = token
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirects)

    def send(self, phone: str, text: str) -> None:
        body = fill_template(self.template, to=phone, text=text).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        # Scheme checked in __init__: only http(s) URLs get here.
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            raise SmsError(f"SMS gateway answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SmsError(f"SMS gateway unreachable: {type(reason).__name__}") from None
        if not 200 <= status < 300:
            raise SmsError(f"SMS gateway answered HTTP {status}")
        log.info("SMS handed to HTTP gateway for %s", mask_phone(phone))


class FileSmsGateway:
    """Appends one JSON line per message; for demos, where operators read the codes from the file."""

    name = "file"

    def __init__(self, path: str) -> None:
        if not path:
            raise ValueError("SMS file gateway needs a file path")
        self.path = path
        self._lock = threading.Lock()

    def send(self, phone: str, text: str) -> None:
        line = json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"), "to": phone, "text": text})
        try:
            with self._lock:
                # 0600: the file holds live one-time codes.
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as file:
                    file.write(line + "\n")
        except OSError as exc:
            raise SmsError(f"cannot write SMS file: {exc.strerror}") from None
        log.info("SMS for %s written to %s", mask_phone(phone), self.path)


def fill_template(template: str, *, to: str, text: str) -> str:
    """Replace {to} and {text} with JSON strings, in one pass so a value can never inject a placeholder."""
    values = {"to": json.dumps(to), "text": json.dumps(text)}
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def normalise_phone(raw: str, default_region_prefix: str = "+39") -> str:
    """E.164 form of a phone number typed by a person: '+39 333 123-4567', '0039 333...', '333 1234567'."""
    if not _COUNTRY_PREFIX.fullmatch(default_region_prefix):
        raise ValueError(f"default region prefix {default_region_prefix!r} is not '+' and a country code")
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("phone number is empty")
    number = _SEPARATORS.sub("", raw)
    if number.startswith("00"):
        number = "+" + number[2:]
    elif not number.startswith("+"):
        number = default_region_prefix + number
    if not _E164.fullmatch(number):
        raise ValueError(
            "phone number must be digits only, with an optional leading + or 00 and country code,"
            " 8 to 15 digits in all (E.164)"
        )
    return number


def mask_phone(phone: str) -> str:
    return phone[:3] + "*" * max(len(phone) - 6, 0) + phone[-3:] if len(phone) > 6 else "***"


def open_sms_gateway(url: str, template: str, token: str, file: str) -> SmsGateway:
    """The HTTP gateway when a URL is configured, otherwise the file gateway."""
    if url:
        return HttpSmsGateway(url, template, token)
    return FileSmsGateway(file)
