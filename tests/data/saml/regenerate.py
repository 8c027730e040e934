"""Regenerate the golden SAML files in this directory (run from the repository root).

    python tests/data/saml/regenerate.py

The SP private key is generated, used, and thrown away: only its certificate is kept (in
sp-metadata.xml). Regenerating changes every file; commit them together.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

from lxml import etree

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent.parent / "saml"))

from saml_testkit import authn_request_xml, make_key_and_cert, sp_metadata_xml  # noqa: E402

from idp.saml import constants as c  # noqa: E402
from idp.saml.credentials import SigningCredential  # noqa: E402
from idp.saml.signing import sign_enveloped  # noqa: E402
from idp.saml.xml import canonical  # noqa: E402

SP = "https://golden.uni.example/sp"
INSTANT = "2026-01-15T10:00:00Z"
ACS = "https://golden.uni.example/saml/acs"

EXTENSIONS = (
    '<mdattr:EntityAttributes><saml:Attribute Name="http://macedir.org/entity-category" '
    'NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">'
    "<saml:AttributeValue>http://refeds.org/category/research-and-scholarship</saml:AttributeValue>"
    "<saml:AttributeValue>https://refeds.org/category/code-of-conduct/v2</saml:AttributeValue>"
    "</saml:Attribute></mdattr:EntityAttributes>"
)
REQUESTED = (
    '<md:AttributeConsumingService index="0"><md:ServiceName xml:lang="en">Golden</md:ServiceName>'
    '<md:RequestedAttribute Name="urn:oid:0.9.2342.19200300.100.1.3" FriendlyName="mail" isRequired="true"/>'
    '<md:RequestedAttribute Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.7" FriendlyName="eduPersonEntitlement"/>'
    '<md:RequestedAttribute Name="urn:oid:1.3.6.1.4.1.25178.1.2.15" FriendlyName="schacPersonalUniqueID"/>'
    "</md:AttributeConsumingService>"
)


def main() -> None:
    key_pem, cert_pem = make_key_and_cert("golden.uni.example", 2048)
    credential = SigningCredential(key_pem, cert_pem)
    metadata = sp_metadata_xml(
        SP,
        cert_pem,
        authn_requests_signed=True,
        acs=((0, ACS), (1, "https://golden.uni.example/saml/acs2")),
        extensions=EXTENSIONS,
        sp_extra=REQUESTED,
    )
    (HERE / "sp-metadata.xml").write_bytes(metadata)

    request = etree.fromstring(authn_request_xml(SP, request_id="_golden-0001", issue_instant=INSTANT, acs_url=ACS))
    sign_enveloped(request, credential)
    signed = etree.tostring(request)
    (HERE / "authn-request-signed.xml").write_bytes(signed)
    (HERE / "authn-request-signed.c14n.xml").write_bytes(canonical(request))
    # One byte changed inside the signed content: the ACS URL.
    (HERE / "authn-request-tampered.xml").write_bytes(signed.replace(b"saml/acs", b"saml/acz", 1))

    # Signature wrapping: an unsigned request pointing elsewhere, carrying the signed one inside it.
    evil = etree.fromstring(
        authn_request_xml(SP, request_id="_evil", issue_instant=INSTANT, acs_url="https://evil.example/acs")
    )
    ext = etree.SubElement(evil, c.q(c.NS_SAMLP, "Extensions"))
    ext.append(copy.deepcopy(request))
    (HERE / "authn-request-wrapped.xml").write_bytes(etree.tostring(evil))

    # Comment injection: signed and valid, because exclusive C14N drops comments.
    commented = etree.fromstring(
        authn_request_xml(SP + "<!---->.evil.example", request_id="_golden-0002", issue_instant=INSTANT)
    )
    sign_enveloped(commented, credential)
    (HERE / "authn-request-comment-signed.xml").write_bytes(etree.tostring(commented))


if __name__ == "__main__":
    main()
