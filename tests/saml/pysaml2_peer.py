"""pysaml2's Saml2Client as a real SP peer (it verifies with the xmlsec1 binary: that is the peer's side)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_TRANSIENT
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

SP_ENTITY_ID = "https://wiki.uni.example/shibboleth"
ACS_URL = "https://wiki.uni.example/saml/acs"
SLS_URL = "https://wiki.uni.example/saml/sls"


@dataclass
class Pysaml2SP:
    client: Saml2Client

    @classmethod
    def create(
        cls,
        idp_metadata: bytes,
        sp_keys: tuple[bytes, bytes],
        workdir: Path,
        *,
        sign_requests: bool = True,
        encryption: bool = False,
        slo_binding: str = BINDING_HTTP_REDIRECT,
    ) -> Pysaml2SP:
        key_file, cert_file = workdir / "sp.key", workdir / "sp.crt"
        key_file.write_bytes(sp_keys[0])
        cert_file.write_bytes(sp_keys[1])
        conf: dict = {
            "entityid": SP_ENTITY_ID,
            "key_file": str(key_file),
            "cert_file": str(cert_file),
            "metadata": {"inline": [idp_metadata.decode()]},
            "allow_unknown_attributes": True,
            "service": {
                "sp": {
                    "endpoints": {
                        "assertion_consumer_service": [(ACS_URL, BINDING_HTTP_POST)],
                        "single_logout_service": [(SLS_URL, slo_binding)],
                    },
                    "authn_requests_signed": sign_requests,
                    "logout_requests_signed": True,
                    "want_assertions_signed": True,
                    "want_response_signed": False,
                    "allow_unsolicited": False,
                    "name_id_format": [NAMEID_FORMAT_TRANSIENT],
                    "signing_algorithm": SIG_RSA_SHA256,
                    "digest_algorithm": DIGEST_SHA256,
                }
            },
        }
        if encryption:
            conf["encryption_keypairs"] = [{"key_file": str(key_file), "cert_file": str(cert_file)}]
        config = SPConfig()
        config.load(conf)
        return cls(Saml2Client(config))

    def metadata(self) -> bytes:
        return str(entity_descriptor(self.client.config)).encode()

    def redirect_authn_request(self, idp_entity_id: str, **kwargs: object) -> tuple[str, str]:
        """(request id, raw query) of an AuthnRequest over HTTP-Redirect."""
        request_id, info = self.client.prepare_for_authenticate(
            entityid=idp_entity_id,
            relay_state="wiki-rs",
            binding=BINDING_HTTP_REDIRECT,
            sigalg=SIG_RSA_SHA256,
            **kwargs,
        )
        location = dict(info["headers"])["Location"]
        return request_id, urlsplit(location).query

    def post_authn_request(self, destination: str, *, sign: bool) -> tuple[str, dict[str, str]]:
        request_id, request = self.client.create_authn_request(
            destination,
            binding=BINDING_HTTP_POST,
            sign=sign,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        xml = str(request).encode() if not isinstance(request, bytes) else request
        return request_id, {"SAMLRequest": base64.b64encode(xml).decode(), "RelayState": "wiki-post"}

    def accept_response(self, saml_response_b64: str, request_id: str):
        response = self.client.parse_authn_request_response(
            saml_response_b64, BINDING_HTTP_POST, outstanding={request_id: "/"}
        )
        if response is None:
            raise AssertionError("pysaml2 returned no response")
        return response

    def logout_request(self, idp_entity_id: str, name_id, session_index: str) -> tuple[str, str]:
        """(request id, raw query) of a signed LogoutRequest over HTTP-Redirect."""
        request_id, request = self.client.create_logout_request(
            self.client.metadata.single_logout_service(idp_entity_id, BINDING_HTTP_REDIRECT, "idpsso")[0]["location"],
            idp_entity_id,
            name_id=name_id,
            session_indexes=[session_index],
            sign=False,
        )
        info = self.client.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(request),
            request.destination,
            relay_state="wiki-logout",
            sign=True,
            sigalg=SIG_RSA_SHA256,
        )
        return request_id, urlsplit(dict(info["headers"])["Location"]).query

    def accept_posted_logout_response(self, saml_response_b64: str) -> object:
        return self.client.parse_logout_request_response(saml_response_b64, BINDING_HTTP_POST)

    def accept_logout_response(self, raw_query: str) -> object:
        get = {k: v[0] for k, v in parse_qs(raw_query).items()}
        return self.client.parse_logout_request_response(get["SAMLResponse"], BINDING_HTTP_REDIRECT)
