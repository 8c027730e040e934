"""SMS gateways against real endpoints: an HTTP sink on 127.0.0.1 and files in a temp directory."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat

import pytest

from idp.mfa.sms import (
    FileSmsGateway,
    HttpSmsGateway,
    SmsError,
    fill_template,
    normalise_phone,
    open_sms_gateway,
)
from tests.support.http_sink import HttpSink

TEMPLATE = '{"to": {to}, "message": {text}, "sender": "Varco"}'


@pytest.fixture
def sink():
    with HttpSink() as running:
        yield running


def test_http_gateway_posts_the_filled_template_with_bearer_token(sink: HttpSink) -> None:
    gateway = HttpSmsGateway(sink.url + "/v1/sms", TEMPLATE, token="s3cr3t-token")
    gateway.send("+393331234567", "Il tuo codice Varco: 123456")
    [request] = sink.requests
    assert request.method == "POST"
    assert request.path == "/v1/sms"
    assert request.headers["content-type"].startswith("application/json")
    assert request.headers["authorization"] == "Bearer s3cr3t-token"
    assert request.json() == {"to": "+393331234567", "message": "Il tuo codice Varco: 123456", "sender": "Varco"}


def test_http_gateway_sends_no_authorization_header_without_a_token(sink: HttpSink) -> None:
    HttpSmsGateway(sink.url, TEMPLATE, token="").send("+393331234567", "code 1")
    assert "authorization" not in sink.requests[0].headers


@pytest.mark.parametrize(
    "text",
    [
        'quote " and backslash \\ and {"json": true}',
        "placeholders {to} and {text} stay literal",
        '", "to": "+19999999999',
        "newline\nand tab\tand unicode àèì 🔐",
    ],
)
def test_message_text_cannot_break_or_inject_into_the_json_body(sink: HttpSink, text: str) -> None:
    HttpSmsGateway(sink.url, TEMPLATE, token="").send("+393331234567", text)
    body = sink.requests[0].json()
    assert body == {"to": "+393331234567", "message": text, "sender": "Varco"}


def test_placeholders_are_filled_in_one_pass() -> None:
    filled = fill_template("[{to}, {text}]", to="{text}", text="{to}")
    assert json.loads(filled) == ["{text}", "{to}"]


def test_gateway_error_status_raises_sms_error_without_leaking_the_text(sink: HttpSink) -> None:
    sink.status = 500
    gateway = HttpSmsGateway(sink.url, TEMPLATE, token="")
    with pytest.raises(SmsError, match="HTTP 500") as refused:
        gateway.send("+393331234567", "code 654321")
    assert "654321" not in str(refused.value)
    assert len(sink.requests) == 1


@pytest.mark.parametrize("status", [302, 400, 401, 429, 503])
def test_any_non_2xx_answer_raises_sms_error(sink: HttpSink, status: int) -> None:
    sink.status = status
    with pytest.raises(SmsError, match=f"HTTP {status}"):
        HttpSmsGateway(sink.url, TEMPLATE, token="").send("+393331234567", "code")


def test_unreachable_gateway_raises_sms_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = HttpSmsGateway(f"http://127.0.0.1:{port}/sms", TEMPLATE, token="")
    with pytest.raises(SmsError, match="unreachable"):
        gateway.send("+393331234567", "code")


def test_gateway_that_never_answers_times_out_as_sms_error() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        gateway = HttpSmsGateway(f"http://127.0.0.1:{port}/sms", TEMPLATE, token="", timeout=0.3)
        with pytest.raises(SmsError, match="unreachable"):
            gateway.send("+393331234567", "code")


@pytest.mark.parametrize(
    ("url", "template"),
    [
        ("file:///etc/passwd", TEMPLATE),
        ("ftp://sms.example.org/", TEMPLATE),
        ("https:///no-host", TEMPLATE),
        ("https://sms.example.org/", '{"to": {to}}'),
        ("https://sms.example.org/", '{"to": {to}, "message": {text}'),
        ("https://sms.example.org/", '{"to": "{to}", "message": "{text}"}'),
    ],
)
def test_bad_gateway_configuration_is_refused_at_startup(url: str, template: str) -> None:
    with pytest.raises(ValueError, match="SMS gateway"):
        HttpSmsGateway(url, template, token="")


def test_file_gateway_appends_one_json_line_per_message(tmp_path, caplog) -> None:
    path = tmp_path / "sms.jsonl"
    gateway = FileSmsGateway(str(path))
    with caplog.at_level(logging.INFO, logger="idp.mfa.sms"):
        gateway.send("+393331234567", "codice 111111")
        gateway.send("+441632960961", 'codice "222222"')
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(line["to"], line["text"]) for line in lines] == [
        ("+393331234567", "codice 111111"),
        ("+441632960961", 'codice "222222"'),
    ]
    assert all(line["at"].endswith("+00:00") for line in lines)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(caplog.records) == 2 and all(r.levelno == logging.INFO for r in caplog.records)
    assert "111111" not in caplog.text  # codes stay in the file, out of the logs


def test_file_gateway_that_cannot_write_raises_sms_error(tmp_path) -> None:
    with pytest.raises(SmsError, match="cannot write"):
        FileSmsGateway(str(tmp_path / "missing-dir" / "sms.jsonl")).send("+393331234567", "code")


def test_open_sms_gateway_picks_http_when_a_url_is_set_and_the_file_otherwise(tmp_path) -> None:
    assert open_sms_gateway("https://sms.example.org/send", TEMPLATE, "t", str(tmp_path / "f")).name == "http"
    assert open_sms_gateway("", TEMPLATE, "", str(tmp_path / "f")).name == "file"
    with pytest.raises(ValueError, match="file path"):
        open_sms_gateway("", "", "", "")


ACCEPTED_PHONES = [
    ("+39 333 123 4567", "+393331234567"),
    ("0039 333-123-4567", "+393331234567"),
    ("333.123.4567", "+393331234567"),
    ("(333) 1234567", "+393331234567"),
    ("06 1234 5678", "+390612345678"),
    ("+1 (202) 555-0143", "+12025550143"),
    ("+44\u00a07700 900123", "+447700900123"),
    ("+12345678", "+12345678"),
    ("+123456789012345", "+123456789012345"),
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED_PHONES)
def test_phone_numbers_are_normalised_to_e164(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


def test_phone_without_prefix_takes_the_default_region() -> None:
    assert normalise_phone("2025550143", default_region_prefix="+1") == "+12025550143"


REFUSED_PHONES = [
    "",
    "   ",
    "+1234567",  # 7 digits
    "+1234567890123456",  # 16 digits
    "+39 333 ABC 4567",
    "+39 333 123 4567 ext 2",
    "++393331234567",
    "39+3331234567",
    "+0393331234567",
    "000393331234567",
    "+39 ٣٣٣ 1234567",  # Arabic-Indic digits
    "+39 333 123 4567; DROP",
    "tel:+393331234567",
]


@pytest.mark.parametrize("raw", REFUSED_PHONES)
def test_implausible_phone_numbers_are_refused_with_a_clear_message(raw: str) -> None:
    with pytest.raises(ValueError, match="phone number"):
        normalise_phone(raw)


@pytest.mark.parametrize("prefix", ["39", "+", "+0", "+1234", "0039"])
def test_bad_default_region_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="region prefix"):
        normalise_phone("3331234567", default_region_prefix=prefix)
