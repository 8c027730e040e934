"""WebAuthn ceremonies through idp.mfa.webauthn against a software authenticator: real keys, real
signatures, and one tampered part per refusal test."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from idp.mfa.webauthn import (
    MAX_RESPONSE_BYTES,
    RegisteredCredential,
    WebAuthnError,
    authentication_options,
    credential_id_of,
    registration_options,
    verify_authentication,
    verify_registration,
)
from tests.support.soft_authenticator import SoftAuthenticator, b64url, unb64url

RP_ID = "idp.example.edu"
ORIGIN = "https://idp.example.edu"


def start_registration(exclude: list[bytes] | None = None) -> tuple[str, bytes]:
    return registration_options(
        rp_id=RP_ID,
        rp_name="Varco test university",
        user_id=b"user-0001",
        user_name="mario.rossi",
        user_display_name="Mario Rossi",
        exclude_credential_ids=exclude or [],
    )


def register(authenticator: SoftAuthenticator, **tamper) -> RegisteredCredential:
    options, challenge = start_registration()
    response = authenticator.create(options, tamper.pop("origin", ORIGIN), **tamper)
    return verify_registration(
        response_json=response, expected_challenge=challenge, expected_origin=ORIGIN, rp_id=RP_ID
    )


def authenticate(authenticator: SoftAuthenticator, credential: RegisteredCredential, *, stored_count=None, **tamper):
    options, challenge = authentication_options(rp_id=RP_ID, allow_credential_ids=[credential.credential_id])
    response = authenticator.get(options, tamper.pop("origin", ORIGIN), **tamper)
    return verify_authentication(
        response_json=response,
        expected_challenge=challenge,
        expected_origin=ORIGIN,
        rp_id=RP_ID,
        credential_public_key=credential.public_key,
        current_sign_count=credential.sign_count if stored_count is None else stored_count,
    )


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


@pytest.fixture
def credential(authenticator: SoftAuthenticator) -> RegisteredCredential:
    return register(authenticator)


# Happy paths


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_each_supported_algorithm_registers_and_then_authenticates(algorithm: str) -> None:
    authenticator = SoftAuthenticator()
    credential = register(authenticator, algorithm=algorithm)
    assert credential.credential_id in authenticator.credentials
    assert authenticate(authenticator, credential) == 1


def test_registration_options_offer_three_algorithms_no_attestation_and_exclude_known_credentials() -> None:
    options_json, challenge = start_registration(exclude=[b"old-key-1", b"old-key-2"])
    options = json.loads(options_json)
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-8, -7, -257]
    assert options["attestation"] == "none"
    assert options["challenge"] == b64url(challenge)
    assert len(challenge) >= 16
    assert options["user"] == {"id": b64url(b"user-0001"), "name": "mario.rossi", "displayName": "Mario Rossi"}
    assert [c["id"] for c in options["excludeCredentials"]] == [b64url(b"old-key-1"), b64url(b"old-key-2")]


def test_each_ceremony_gets_a_fresh_challenge() -> None:
    assert start_registration()[1] != start_registration()[1]
    first = authentication_options(rp_id=RP_ID, allow_credential_ids=[b"k"])[1]
    assert first != authentication_options(rp_id=RP_ID, allow_credential_ids=[b"k"])[1]


def test_authenticator_refuses_to_register_twice_when_its_credential_is_excluded(authenticator, credential) -> None:
    options, _ = start_registration(exclude=[credential.credential_id])
    with pytest.raises(ValueError, match="InvalidStateError"):
        authenticator.create(options, ORIGIN)


def test_registration_records_transports_aaguid_and_initial_sign_count(authenticator) -> None:
    authenticator.aaguid = bytes.fromhex("00112233445566778899aabbccddeeff")
    credential = register(authenticator, transports=("usb", "nfc", "teleport"))
    assert credential.transports == ("usb", "nfc")  # unknown transports are dropped
    assert credential.aaguid == "00112233-4455-6677-8899-aabbccddeeff"
    assert credential.sign_count == 0


def test_authentication_options_list_allowed_credentials_and_user_verification(credential) -> None:
    options_json, challenge = authentication_options(
        rp_id=RP_ID, allow_credential_ids=[credential.credential_id], user_verification="required"
    )
    options = json.loads(options_json)
    assert options["rpId"] == RP_ID
    assert options["userVerification"] == "required"
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(credential.credential_id)]
    assert options["challenge"] == b64url(challenge)


def test_sign_count_advances_with_each_authentication(authenticator, credential) -> None:
    first = authenticate(authenticator, credential)
    second = authenticate(authenticator, credential, stored_count=first)
    assert (first, second) == (1, 2)


def test_authenticator_without_a_counter_is_accepted_while_both_counts_are_zero() -> None:
    authenticator = SoftAuthenticator(counter=False)
    credential = register(authenticator)
    assert authenticate(authenticator, credential) == 0
    assert authenticate(authenticator, credential) == 0


def test_credential_id_of_names_the_credential_the_response_claims(authenticator, credential) -> None:
    options, _ = authentication_options(rp_id=RP_ID, allow_credential_ids=[credential.credential_id])
    assert credential_id_of(authenticator.get(options, ORIGIN)) == credential.credential_id


def test_user_verification_is_enforced_when_required() -> None:
    authenticator = SoftAuthenticator(user_verified=False)
    options, challenge = start_registration()
    response = authenticator.create(options, ORIGIN)
    with pytest.raises(WebAuthnError, match="User verification is required"):
        verify_registration(
            response_json=response,
            expected_challenge=challenge,
            expected_origin=ORIGIN,
            rp_id=RP_ID,
            require_user_verification=True,
        )
    credential = verify_registration(
        response_json=response, expected_challenge=challenge, expected_origin=ORIGIN, rp_id=RP_ID
    )
    options, challenge = authentication_options(rp_id=RP_ID, allow_credential_ids=[credential.credential_id])
    with pytest.raises(WebAuthnError, match="User verification is required"):
        verify_authentication(
            response_json=authenticator.get(options, ORIGIN),
            expected_challenge=challenge,
            expected_origin=ORIGIN,
            rp_id=RP_ID,
            credential_public_key=credential.public_key,
            current_sign_count=0,
            require_user_verification=True,
        )


# Registration refusals


def test_registration_from_another_origin_is_refused(authenticator) -> None:
    with pytest.raises(WebAuthnError, match="origin"):
        register(authenticator, origin="https://evil.example.net")


def test_registration_answering_another_challenge_is_refused(authenticator) -> None:
    with pytest.raises(WebAuthnError, match="challenge"):
        register(authenticator, challenge=b"a challenge from another session")


def test_registration_scoped_to_another_rp_id_is_refused(authenticator) -> None:
    with pytest.raises(WebAuthnError, match="RP ID"):
        register(authenticator, rp_id="evil.example.net")


def test_authentication_response_offered_as_registration_is_refused(authenticator, credential) -> None:
    options, challenge = authentication_options(rp_id=RP_ID, allow_credential_ids=[credential.credential_id])
    with pytest.raises(WebAuthnError):
        verify_registration(
            response_json=authenticator.get(options, ORIGIN),
            expected_challenge=challenge,
            expected_origin=ORIGIN,
            rp_id=RP_ID,
        )


# Authentication refusals


def test_authentication_from_another_origin_is_refused(authenticator, credential) -> None:
    with pytest.raises(WebAuthnError, match="origin"):
        authenticate(authenticator, credential, origin="https://idp.example.edu.evil.example.net")


def test_authentication_answering_another_challenge_is_refused(authenticator, credential) -> None:
    with pytest.raises(WebAuthnError, match="challenge"):
        authenticate(authenticator, credential, challenge=b"a challenge from another session")


def test_authentication_scoped_to_another_rp_id_is_refused(authenticator, credential) -> None:
    with pytest.raises(WebAuthnError, match="RP ID"):
        authenticate(authenticator, credential, rp_id="example.edu")


def test_registration_type_client_data_is_refused_at_authentication(authenticator, credential) -> None:
    with pytest.raises(WebAuthnError, match="client data type"):
        authenticate(authenticator, credential, client_data_type="webauthn.create")


def test_tampered_signature_is_refused(authenticator, credential) -> None:
    with pytest.raises(WebAuthnError, match="signature"):
        authenticate(authenticator, credential, bad_signature=True)


def test_authenticator_data_changed_after_signing_is_refused(authenticator, credential) -> None:
    options, challenge = authentication_options(rp_id=RP_ID, allow_credential_ids=[credential.credential_id])
    response = json.loads(authenticator.get(options, ORIGIN))
    auth_data = bytearray(unb64url(response["response"]["authenticatorData"]))
    auth_data[36] += 1  # bump the sign count the signature covers
    response["response"]["authenticatorData"] = b64url(bytes(auth_data))
    with pytest.raises(WebAuthnError, match="signature"):
        verify_authentication(
            response_json=json.dumps(response),
            expected_challenge=challenge,
            expected_origin=ORIGIN,
            rp_id=RP_ID,
            credential_public_key=credential.public_key,
            current_sign_count=0,
        )


def test_replayed_sign_count_is_refused_as_a_cloned_authenticator(authenticator, credential) -> None:
    count = authenticate(authenticator, credential)
    with pytest.raises(WebAuthnError, match="sign count"):
        authenticate(authenticator, credential, stored_count=count, sign_count=count)


def test_sign_count_lower_than_stored_is_refused(authenticator, credential) -> None:
    with pytest.raises(WebAuthnError, match="sign count"):
        authenticate(authenticator, credential, stored_count=40, sign_count=7)


def test_assertion_from_an_unknown_credential_is_refused(credential) -> None:
    stranger = SoftAuthenticator()
    unknown = register(stranger)
    options, challenge = authentication_options(rp_id=RP_ID, allow_credential_ids=[credential.credential_id])
    response = stranger.get(options, ORIGIN, credential_id=unknown.credential_id)
    assert credential_id_of(response) != credential.credential_id
    with pytest.raises(WebAuthnError, match="signature"):
        verify_authentication(
            response_json=response,
            expected_challenge=challenge,
            expected_origin=ORIGIN,
            rp_id=RP_ID,
            credential_public_key=credential.public_key,
            current_sign_count=credential.sign_count,
        )


# Hostile input


CHALLENGE = b"c" * 32


def shaped(**response: str) -> str:
    """A PublicKeyCredential JSON with the given response members."""
    return json.dumps({"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": response})


GET_CLIENT_DATA = b64url(
    json.dumps({"type": "webauthn.get", "challenge": b64url(CHALLENGE), "origin": ORIGIN}).encode()
)

# name: (response JSON, what the authentication refusal must mention)
MALFORMED_RESPONSES = {
    "not JSON": ("{not json", "not valid JSON"),
    "JSON array": ("[]", "not a PublicKeyCredential"),
    "empty object": ("{}", "not a PublicKeyCredential"),
    "no response member": (json.dumps({"id": "AAAA", "rawId": "AAAA", "type": "public-key"}), "PublicKeyCredential"),
    "number for rawId": (json.dumps({"id": "AAAA", "rawId": 7, "response": {}}), "rawId is missing or not a string"),
    "id differs from rawId": (json.dumps({"id": "AAAA", "rawId": "BBBB", "response": {}}), "id and rawId differ"),
    "characters outside base64url": (
        shaped(clientDataJSON="e30+/", attestationObject="AAAA", authenticatorData="AAAA", signature="AAAA"),
        "clientDataJSON is not base64url",
    ),
    "impossible base64url length": (
        shaped(clientDataJSON="e30", attestationObject="A", authenticatorData="A", signature="AAAA"),
        "is not base64url",
    ),
    "number for signature": (
        json.dumps({"id": "AAAA", "rawId": "AAAA", "response": {"clientDataJSON": "e30", "signature": 1}}),
        "missing or not a string",
    ),
    "client data without members": (
        shaped(clientDataJSON="e30", attestationObject="AAAA", authenticatorData="AAAA", signature="AAAA"),
        "clientDataJSON was malformed",
    ),
    "garbage authenticator data": (
        shaped(clientDataJSON=GET_CLIENT_DATA, attestationObject="AAAA", authenticatorData="AAAA", signature="AAAA"),
        "authenticatorData was malformed",
    ),
    "deeply nested JSON": ("[" * 30_000 + "]" * 30_000, "not valid JSON"),
}


@pytest.mark.parametrize(("response_json", "reason"), MALFORMED_RESPONSES.values(), ids=MALFORMED_RESPONSES.keys())
def test_malformed_authentication_response_is_refused(credential, response_json: str, reason: str) -> None:
    with pytest.raises(WebAuthnError, match=reason):
        verify_authentication(
            response_json=response_json,
            expected_challenge=CHALLENGE,
            expected_origin=ORIGIN,
            rp_id=RP_ID,
            credential_public_key=credential.public_key,
            current_sign_count=0,
        )


@pytest.mark.parametrize(("response_json", "reason"), MALFORMED_RESPONSES.values(), ids=MALFORMED_RESPONSES.keys())
def test_malformed_registration_response_is_refused(response_json: str, reason: str) -> None:
    with pytest.raises(WebAuthnError):
        verify_registration(
            response_json=response_json,
            expected_challenge=CHALLENGE,
            expected_origin=ORIGIN,
            rp_id=RP_ID,
        )


def test_garbage_attestation_object_is_refused(authenticator) -> None:
    options, challenge = start_registration()
    response = json.loads(authenticator.create(options, ORIGIN))
    response["response"]["attestationObject"] = b64url(b"\xa3\xff\x00 not cbor")
    with pytest.raises(WebAuthnError, match="attestationObject"):
        verify_registration(
            response_json=json.dumps(response), expected_challenge=challenge, expected_origin=ORIGIN, rp_id=RP_ID
        )


def test_response_that_is_not_a_string_is_refused(credential) -> None:
    for wrong in (None, b"{}", {"id": "AAAA"}):
        with pytest.raises(WebAuthnError, match="JSON string"):
            verify_registration(response_json=wrong, expected_challenge=b"c" * 32, expected_origin=ORIGIN, rp_id=RP_ID)


def test_oversized_response_is_refused_before_parsing(authenticator, credential) -> None:
    options, challenge = authentication_options(rp_id=RP_ID, allow_credential_ids=[credential.credential_id])
    response = json.loads(authenticator.get(options, ORIGIN))
    response["padding"] = "x" * MAX_RESPONSE_BYTES
    with pytest.raises(WebAuthnError, match="larger than"):
        verify_authentication(
            response_json=json.dumps(response),
            expected_challenge=challenge,
            expected_origin=ORIGIN,
            rp_id=RP_ID,
            credential_public_key=credential.public_key,
            current_sign_count=0,
        )


def test_missing_or_short_expected_challenge_is_refused(authenticator) -> None:
    options, _ = start_registration()
    response = authenticator.create(options, ORIGIN)
    for challenge in (b"", b"short", None):
        with pytest.raises(WebAuthnError, match="expected challenge"):
            verify_registration(
                response_json=response, expected_challenge=challenge, expected_origin=ORIGIN, rp_id=RP_ID
            )


def test_stored_key_that_is_not_a_cose_key_is_refused(authenticator, credential) -> None:
    with pytest.raises(WebAuthnError):
        authenticate(authenticator, replace(credential, public_key=b"\xa1\x01\x02"))


def test_error_message_is_one_printable_line_whatever_the_origin_says(authenticator) -> None:
    with pytest.raises(WebAuthnError) as refused:
        register(authenticator, origin="https://evil.example\r\nFAKE LOG LINE " + "x" * 500)
    message = str(refused.value)
    assert "\n" not in message and "\r" not in message
    assert len(message) < 300


def test_bad_options_input_raises_webauthn_error() -> None:
    with pytest.raises(WebAuthnError):
        authentication_options(rp_id="", allow_credential_ids=[])
    with pytest.raises(WebAuthnError):
        authentication_options(rp_id=RP_ID, allow_credential_ids=[], user_verification="sometimes")
    with pytest.raises(WebAuthnError):
        authentication_options(rp_id=RP_ID, allow_credential_ids=["not-bytes"])
    with pytest.raises(WebAuthnError, match="user_id"):
        registration_options(
            rp_id=RP_ID, rp_name="x", user_id=b"", user_name="u", user_display_name="U", exclude_credential_ids=[]
        )


# The browser half: idp/static/webauthn.js in Chromium against a CDP virtual authenticator

STATIC_DIR = Path(__file__).resolve().parents[2] / "idp" / "static"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>WebAuthn</title></head><body>
<script type="application/json" id="webauthn-options">{options}</script>
<form id="webauthn-form" method="post" action="/submit">
  <input type="hidden" name="webauthn_response" value="">
  <button id="webauthn-start" type="button">Use security key</button>
</form>
<p id="webauthn-error" role="alert" hidden data-security-error="Questa chiave non vale per questo sito."></p>
<script src="/webauthn.js"></script>
</body></html>
"""


class StaticSite:
    """Files from a temp dir over http://localhost (a secure context); POSTs are accepted and dropped."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def page(self, name: str, options_json: str) -> str:
        # Inside <script>, "<" must not open "</script>"; JSON allows \u003c for it.
        (self.directory / name).write_text(PAGE.format(options=options_json.replace("<", "\\u003c")), encoding="utf-8")
        return f"{self.origin}/{name}"

    def __enter__(self) -> StaticSite:
        shutil.copy(STATIC_DIR / "webauthn.js", self.directory / "webauthn.js")
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def chromium_page(chromium):
    context = chromium.new_context()
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    yield page
    context.close()


def submitted_response(page, url: str) -> str:
    page.goto(url)
    with page.expect_request(lambda request: request.method == "POST") as posted:
        page.click("#webauthn-start")
    return parse_qs(posted.value.post_data)["webauthn_response"][0]


@pytest.mark.browser
def test_webauthn_js_registers_and_authenticates_in_chromium(chromium_page, tmp_path) -> None:
    with StaticSite(tmp_path) as site:
        options, challenge = registration_options(
            rp_id="localhost",
            rp_name="Varco </script> test",
            user_id=b"user-0001",
            user_name="mario.rossi",
            user_display_name="Mario Rossi",
            exclude_credential_ids=[b"an older key"],
        )
        response = submitted_response(chromium_page, site.page("register.html", options))
        credential = verify_registration(
            response_json=response,
            expected_challenge=challenge,
            expected_origin=site.origin,
            rp_id="localhost",
            require_user_verification=True,
        )
        assert "internal" in credential.transports

        options, challenge = authentication_options(rp_id="localhost", allow_credential_ids=[credential.credential_id])
        response = submitted_response(chromium_page, site.page("login.html", options))
        assert credential_id_of(response) == credential.credential_id
        sign_count = verify_authentication(
            response_json=response,
            expected_challenge=challenge,
            expected_origin=site.origin,
            rp_id="localhost",
            credential_public_key=credential.public_key,
            current_sign_count=credential.sign_count,
            require_user_verification=True,
        )
        assert sign_count > credential.sign_count or sign_count == credential.sign_count == 0


@pytest.mark.browser
def test_webauthn_js_shows_the_browser_refusal_in_the_alert(chromium_page, tmp_path) -> None:
    with StaticSite(tmp_path) as site:
        options, _ = registration_options(
            rp_id="example.org",  # not this page's origin: the browser refuses with a SecurityError
            rp_name="Varco",
            user_id=b"user-0001",
            user_name="mario.rossi",
            user_display_name="Mario Rossi",
            exclude_credential_ids=[],
        )
        chromium_page.goto(site.page("wrong-rp.html", options))
        chromium_page.click("#webauthn-start")
        alert = chromium_page.locator("#webauthn-error")
        alert.wait_for(state="visible", timeout=10_000)
        assert alert.text_content() == "Questa chiave non vale per questo sito."
        assert chromium_page.locator("#webauthn-start").is_enabled()
        assert chromium_page.locator('input[name="webauthn_response"]').input_value() == ""
