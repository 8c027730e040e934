"""SSO responses per second on one core: Varco's idp.saml against pysaml2's default configuration.

    python bench/saml.py [--seconds 5]

Each iteration handles one Redirect-binding AuthnRequest (signed by the SP) for a user who already has a
session: parse and verify the request, build the Response with a signed assertion, base64-encode it.
Both sides use the same RSA-3072 IdP key, the same SP and the same request stream; pysaml2 runs with its
default crypto backend (the xmlsec1 binary). Prints both rates and their ratio; exits 0.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "saml"))

from saml_testkit import authn_request_xml, make_key_and_cert, sp_metadata_xml  # noqa: E402

from idp.saml import constants as c  # noqa: E402
from idp.saml.bindings import IncomingMessage  # noqa: E402
from idp.saml.config import IdpConfig  # noqa: E402
from idp.saml.credentials import SigningCredential  # noqa: E402
from idp.saml.response import build_response  # noqa: E402
from idp.saml.signing import sign_redirect_query  # noqa: E402
from idp.saml.sp import parse_sp_metadata  # noqa: E402
from idp.saml.sso import parse_authn_request  # noqa: E402
from idp.saml.subject import SamlSubject  # noqa: E402

IDP = "https://idp.uni.example/saml/metadata"
SSO = "https://idp.uni.example/saml/sso/redirect"
SP = "https://lms.uni.example/sp"
ACS = "https://lms.uni.example/saml/acs"
RELEASE = ("eduPersonPrincipalName", "mail", "displayName", "givenName", "sn", "eduPersonScopedAffiliation")
ATTRS = {
    "eduPersonPrincipalName": ["mario.rossi@uni.example"],
    "mail": ["mario.rossi@studenti.uni.example"],
    "displayName": ["Mario Rossi"],
    "givenName": ["Mario"],
    "sn": ["Rossi"],
    "eduPersonScopedAffiliation": ["student@uni.example", "member@uni.example"],
}


class RequestFactory:
    """Fresh signed Redirect-binding query strings, one per call: the replay guard sees a new ID each time."""

    def __init__(self, sp_credential: SigningCredential, tag: str) -> None:
        self.sp_credential = sp_credential
        self.tag = tag
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        xml = authn_request_xml(
            SP,
            request_id=f"_bench{self.tag}{self.count:08d}",
            issue_instant=now,
            destination=SSO,
            acs_url=ACS,
        )
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        encoded = base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()
        return sign_redirect_query([("SAMLRequest", encoded), ("RelayState", "bench")], self.sp_credential)


class Meter:
    """Times only ``handle`` (the SP's request creation is excluded). Sides run in alternating slices so
    that they share whatever else the machine is doing."""

    def __init__(self, handle, make_input) -> None:
        self.handle = handle
        self.make_input = make_input
        self.done = 0
        self.elapsed = 0.0

    def run_slice(self, seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            item = self.make_input()
            start = time.perf_counter()
            self.handle(item)
            self.elapsed += time.perf_counter() - start
            self.done += 1

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed else 0.0


def varco_handler(idp_keys: tuple[bytes, bytes], sp_metadata: bytes):
    idp = IdpConfig(
        entity_id=IDP,
        sso_redirect_url=SSO,
        sso_post_url=SSO.replace("redirect", "post"),
        slo_redirect_url=IDP.replace("metadata", "slo/redirect"),
        slo_post_url=IDP.replace("metadata", "slo/post"),
        signing=SigningCredential(*idp_keys),
        scope="uni.example",
        name_id_salt=b"bench-salt",
    )
    sp = parse_sp_metadata(sp_metadata, release=frozenset(RELEASE))
    registry = {SP: sp}.get
    seen: set[str] = set()

    def replay_guard(key: str, ttl: int) -> bool:
        if key in seen:
            return False
        seen.add(key)
        return True

    def handle(query: str) -> str:
        request = parse_authn_request(
            IncomingMessage.from_redirect(query), idp=idp, sp_lookup=registry, replay_guard=replay_guard
        )
        subject = SamlSubject("acc-1", "mario.rossi", ATTRS, ["pwd"], c.AC_PASSWORD_PROTECTED, int(time.time()), "_s1")
        return build_response(request, subject, idp).encoded

    return handle


def pysaml2_handler(idp_keys: tuple[bytes, bytes], sp_metadata: bytes, workdir: Path):
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.config import IdPConfig
    from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_TRANSIENT
    from saml2.server import Server

    key_file, cert_file = workdir / "idp.key", workdir / "idp.crt"
    key_file.write_bytes(idp_keys[0])
    cert_file.write_bytes(idp_keys[1])
    config = IdPConfig()
    config.load(
        {
            "entityid": IDP,
            "key_file": str(key_file),
            "cert_file": str(cert_file),
            "xmlsec_binary": shutil.which("xmlsec1"),
            "metadata": {"inline": [sp_metadata.decode()]},
            "service": {
                "idp": {
                    "endpoints": {"single_sign_on_service": [(SSO, BINDING_HTTP_REDIRECT)]},
                    "name_id_format": [NAMEID_FORMAT_TRANSIENT],
                    "want_authn_requests_signed": True,
                    "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI}},
                }
            },
        }
    )
    server = Server(config=config)

    def handle(query: str) -> str:
        params = {k: v[0] for k, v in parse_qs(query).items()}
        parsed = server.parse_authn_request(
            params["SAMLRequest"],
            BINDING_HTTP_REDIRECT,
            params["RelayState"],
            params["SigAlg"],
            params["Signature"],
        )
        request = parsed.message
        response = server.create_authn_response(
            ATTRS,
            in_response_to=request.id,
            destination=ACS,
            sp_entity_id=SP,
            name_id_policy=request.name_id_policy,
            userid="mario.rossi",
            authn={"class_ref": c.AC_PASSWORD_PROTECTED, "authn_auth": IDP},
            sign_assertion=True,
            sign_response=False,
        )
        return base64.b64encode(str(response).encode()).decode()

    return handle


def bare_rsa_signer(key_pem: bytes):
    """One RSA PKCS#1 v1.5 SHA-256 signature with the IdP key: no signed response can be cheaper."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_private_key(key_pem, None)

    def sign(data: bytes) -> None:
        key.sign(data, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]

    return sign


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget per side (default 5)")
    parser.add_argument("--key-bits", type=int, default=3072, help="IdP RSA key size (default 3072)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})

    idp_keys = make_key_and_cert("idp.uni.example", args.key_bits)
    sp_key, sp_cert = make_key_and_cert("lms.uni.example", 2048)
    sp_metadata = sp_metadata_xml(SP, sp_cert, authn_requests_signed=True, acs=((0, ACS),))
    sp_credential = SigningCredential(sp_key, sp_cert)
    varco_requests, pysaml2_requests = RequestFactory(sp_credential, "v"), RequestFactory(sp_credential, "p")

    varco = varco_handler(idp_keys, sp_metadata)
    varco(varco_requests())  # warm caches (key objects, parser) outside the timed loop
    with tempfile.TemporaryDirectory() as tmp:
        pysaml2 = pysaml2_handler(idp_keys, sp_metadata, Path(tmp))
        pysaml2(pysaml2_requests())
        sides = (
            Meter(varco, varco_requests),
            Meter(pysaml2, pysaml2_requests),
            Meter(bare_rsa_signer(idp_keys[0]), lambda: b"x" * 64),
        )
        slices = max(1, int(args.seconds / 0.5))
        for _ in range(slices):
            for side in sides[:2]:
                side.run_slice(args.seconds / slices)
            sides[2].run_slice(0.1)
    varco_rate, pysaml2_rate, ceiling = (side.rate for side in sides)

    bits = args.key_bits
    print(f"SAML SSO responses/s on one core (RSA-{bits} assertion signature, signed Redirect AuthnRequest)")
    print(f"  varco idp.saml (python-xmlsec in process): {varco_rate:8.1f}/s")
    print(f"  pysaml2 Server (xmlsec1 binary backend):  {pysaml2_rate:8.1f}/s")
    print(f"  ratio varco / pysaml2:                    {varco_rate / pysaml2_rate:8.1f}x")
    print(f"  ceiling: bare RSA-{bits} signatures/s:     {ceiling:8.1f}/s (one per response at least)")
    print(f"  varco share of the ceiling:               {100 * varco_rate / ceiling:8.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
