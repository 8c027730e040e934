"""XML and Redirect-binding signatures, in process: python-xmlsec for XML, cryptography for query strings.

``verify_enveloped`` returns the element whose signature it verified; callers read only that element.
It refuses every shape that signature-wrapping attacks rely on: a signature that is not a direct child
of the element, a Reference that points elsewhere, duplicate IDs, unexpected transforms.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from urllib.parse import quote, unquote_plus

import xmlsec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from lxml import etree

from idp.saml import constants as c
from idp.saml.credentials import Certificate, SigningCredential
from idp.saml.errors import MalformedMessageError, SignatureError

_DS_SIGNATURE = c.q(c.NS_DS, "Signature")

_SIGN_TRANSFORMS = {
    c.SIG_RSA_SHA256: xmlsec.Transform.RSA_SHA256,
    c.SIG_RSA_SHA384: xmlsec.Transform.RSA_SHA384,
    c.SIG_RSA_SHA512: xmlsec.Transform.RSA_SHA512,
}
_DIGEST_TRANSFORMS = {
    c.DIGEST_SHA256: xmlsec.Transform.SHA256,
    c.DIGEST_SHA384: xmlsec.Transform.SHA384,
    c.DIGEST_SHA512: xmlsec.Transform.SHA512,
}
# SHA-1 is refused on purpose: every SP stack Varco serves can sign with SHA-256.
ACCEPTED_SIGNATURE_METHODS = frozenset(
    {
        c.SIG_RSA_SHA256,
        c.SIG_RSA_SHA384,
        c.SIG_RSA_SHA512,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)
ACCEPTED_DIGEST_METHODS = frozenset(_DIGEST_TRANSFORMS)
_ACCEPTED_REFERENCE_TRANSFORMS = frozenset({c.TRANSFORM_ENVELOPED, c.C14N_EXCLUSIVE})
_QUERY_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    c.SIG_RSA_SHA256: hashes.SHA256,
    c.SIG_RSA_SHA384: hashes.SHA384,
    c.SIG_RSA_SHA512: hashes.SHA512,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": hashes.SHA512,
}


def sign_enveloped(
    element: etree._Element,
    credential: SigningCredential,
    *,
    signature_method: str = c.SIG_RSA_SHA256,
    digest_method: str = c.DIGEST_SHA256,
) -> None:
    """Sign ``element`` in place with an enveloped signature placed right after its saml:Issuer.

    SAML Core 5.4.1-5.4.4: exclusive C14N, enveloped-signature transform, Reference URI = #ID.
    """
    element_id = element.get("ID")
    if not element_id:
        raise ValueError("element to sign has no ID")
    signature = xmlsec.template.create(element, xmlsec.Transform.EXCL_C14N, _SIGN_TRANSFORMS[signature_method], ns="ds")
    issuer = element.find(c.q(c.NS_SAML, "Issuer"))
    element.insert(0 if issuer is None else element.index(issuer) + 1, signature)
    ref = xmlsec.template.add_reference(signature, _DIGEST_TRANSFORMS[digest_method], uri="#" + element_id)
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    x509_data = xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    cert = etree.SubElement(x509_data, c.q(c.NS_DS, "X509Certificate"))
    cert.text = credential.cert_b64
    ctx = xmlsec.SignatureContext()
    ctx.register_id(element, "ID")
    ctx.key = credential.xmlsec_key
    ctx.sign(signature)


def has_enveloped_signature(element: etree._Element) -> bool:
    return element.find(_DS_SIGNATURE) is not None


def _check_signature_shape(element: etree._Element) -> etree._Element:
    """Structural checks done before any crypto: the one signature must cover exactly ``element``."""
    signatures = element.findall(_DS_SIGNATURE)
    if len(signatures) != 1:
        raise SignatureError(f"expected one enveloped signature, found {len(signatures)}")
    signature = signatures[0]
    element_id = element.get("ID")
    if not element_id:
        raise SignatureError("signed element has no ID")
    ns = {"ds": c.NS_DS}
    if signature.xpath("string(ds:SignedInfo/ds:CanonicalizationMethod/@Algorithm)", namespaces=ns) != (
        c.C14N_EXCLUSIVE
    ):
        raise SignatureError("canonicalization must be exclusive C14N without comments")
    method = signature.xpath("string(ds:SignedInfo/ds:SignatureMethod/@Algorithm)", namespaces=ns)
    if method not in ACCEPTED_SIGNATURE_METHODS:
        raise SignatureError(f"signature method {method!r} is not accepted")
    references = signature.findall(f"{{{c.NS_DS}}}SignedInfo/{{{c.NS_DS}}}Reference")
    if len(references) != 1:
        raise SignatureError("signature must carry exactly one Reference")
    reference = references[0]
    # SAML Core 5.4.2: the Reference URI must identify the signed element by its ID.
    if reference.get("URI") != "#" + element_id:
        raise SignatureError("signature does not reference the element being used")
    transforms = [str(t) for t in reference.xpath("ds:Transforms/ds:Transform/@Algorithm", namespaces=ns)]  # type: ignore[union-attr]
    if not set(transforms) <= _ACCEPTED_REFERENCE_TRANSFORMS or c.TRANSFORM_ENVELOPED not in transforms:
        raise SignatureError(f"unexpected reference transforms {transforms!r}")
    digest = reference.xpath("string(ds:DigestMethod/@Algorithm)", namespaces=ns)
    if digest not in ACCEPTED_DIGEST_METHODS:
        raise SignatureError(f"digest method {digest!r} is not accepted")
    # Any ID-like attribute carrying the same value (ID, Id, id, xml:id, which libxml2 registers on its
    # own) could make the Reference resolve to another element; allow exactly one: ours.
    matches = (
        element.getroottree()
        .getroot()
        .xpath(
            "count(//@*[. = $id][local-name() = 'ID' or local-name() = 'Id' or local-name() = 'id'])",
            id=element_id,
        )
    )
    if matches != 1:
        raise SignatureError("the signed ID occurs more than once in the document")
    return signature


def verify_enveloped(element: etree._Element, certificates: Sequence[Certificate]) -> etree._Element:
    """Verify the enveloped signature of ``element`` against any of ``certificates``; return ``element``.

    The returned element is the only thing the caller may read: its signature provably covers it.
    """
    if not certificates:
        raise SignatureError("no certificate available to verify the signature")
    signature = _check_signature_shape(element)
    for certificate in certificates:
        ctx = xmlsec.SignatureContext()
        try:
            ctx.register_id(element, "ID")
            ctx.key = certificate.xmlsec_key
            ctx.verify(signature)
        except xmlsec.Error:
            continue
        return element
    raise SignatureError("signature verification failed")


def _raw_query_pairs(raw_query: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if name in pairs:
            raise MalformedMessageError(f"query parameter {name} repeated")
        pairs[name] = value
    return pairs


def verify_redirect_signature(raw_query: str, message_param: str, certificates: Sequence[Certificate]) -> None:
    """Check a SAML HTTP-Redirect signature (SAML Bindings 3.4.4.1) over the query string as received.

    The signed octets are the URL-encoded values exactly as sent, so we rebuild them from the raw query,
    never from decoded values.
    """
    pairs = _raw_query_pairs(raw_query)
    if "Signature" not in pairs or "SigAlg" not in pairs:
        raise SignatureError("Redirect binding message is not signed")
    sig_alg = unquote_plus(pairs["SigAlg"])
    hash_cls = _QUERY_HASHES.get(sig_alg)
    if hash_cls is None:
        raise SignatureError(f"SigAlg {sig_alg!r} is not accepted")
    signed = f"{message_param}={pairs[message_param]}"
    if "RelayState" in pairs:
        signed += f"&RelayState={pairs['RelayState']}"
    signed += f"&SigAlg={pairs['SigAlg']}"
    try:
        signature = base64.b64decode(unquote_plus(pairs["Signature"]), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("Signature is not base64") from None
    if not certificates:
        raise SignatureError("no certificate available to verify the signature")
    for certificate in certificates:
        key = certificate.public_key
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed.encode("ascii"), padding.PKCS1v15(), hash_cls())
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, signed.encode("ascii"), ec.ECDSA(hash_cls()))
            else:
                continue
        except InvalidSignature:
            continue
        return
    raise SignatureError("Redirect binding signature verification failed")


def sign_redirect_query(
    params: Iterable[tuple[str, str]], credential: SigningCredential, sig_alg: str = c.SIG_RSA_SHA256
) -> str:
    """Build a signed Redirect-binding query string from ordered (name, value) pairs."""
    parts = [f"{name}={quote(value, safe='')}" for name, value in params]
    parts.append(f"SigAlg={quote(sig_alg, safe='')}")
    signed = "&".join(parts).encode("ascii")
    signature = credential.private_key.sign(signed, padding.PKCS1v15(), _QUERY_HASHES[sig_alg]())
    return "&".join(parts) + "&Signature=" + quote(base64.b64encode(signature).decode("ascii"), safe="")
