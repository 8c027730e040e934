"""Hardened XML intake: size limits, no DTDs, no entities, no network, bounded inflate.

Every byte of SAML that reaches Varco from outside goes through ``parse_xml``; nothing else in
idp.saml calls an lxml parser on untrusted input.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from lxml import etree

from idp.saml.errors import MalformedMessageError, MessageTooLargeError, UnsafeXmlError

DEFAULT_MAX_XML_BYTES = 256 * 1024

# The encodings a DOCTYPE could hide behind that libxml2 autodetects from the first bytes.
_DOCTYPE_MARKERS = tuple(
    "<!DOCTYPE".encode(enc) for enc in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
) + (b"<!ENTITY",)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        dtd_validation=False,
        load_dtd=False,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> etree._Element:
    """Parse untrusted XML, refusing DOCTYPEs outright and anything over ``max_bytes``."""
    if len(data) > max_bytes:
        raise MessageTooLargeError(f"XML message is {len(data)} bytes, limit {max_bytes}")
    upper = data.upper()
    if any(marker in upper for marker in _DOCTYPE_MARKERS):
        raise UnsafeXmlError("DOCTYPE and entity declarations are refused")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise MalformedMessageError(f"not well-formed XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:  # type: ignore[union-attr]
        raise UnsafeXmlError("DOCTYPE is refused")
    # Entity references survive resolve_entities=False as nodes; a message carrying one is hostile.
    if root.xpath("boolean(//node()[self::processing-instruction()])"):
        raise UnsafeXmlError("processing instructions are refused")
    for node in root.iter(etree.Entity):
        raise UnsafeXmlError(f"entity reference {node!r} is refused")
    return root


def text_of(element: etree._Element | None) -> str | None:
    """Text content of a simple-content element, refusing mixed content.

    ``user@uni.it<!---->.evil.com`` parses as text "user@uni.it", a comment and a tail; exclusive
    C14N without comments signs the concatenation, so reading ``.text`` would return a value the
    signer never meant. We refuse any child node (element, comment, PI) instead of guessing.
    """
    if element is None:
        return None
    if len(element) or element.xpath("boolean(./comment() | ./processing-instruction())"):
        raise UnsafeXmlError(f"{element.tag} must hold plain text only")
    return (element.text or "").strip()


def b64decode_strict(value: str | bytes, *, max_bytes: int) -> bytes:
    """Decode base64 (whitespace tolerated), refusing oversized input before decoding it."""
    if isinstance(value, str):
        value = value.encode("ascii", "replace")
    # 4/3 for base64 plus room for line breaks; the decoded size is checked again by the caller.
    if len(value) > max_bytes * 3 // 2 + 1024:
        raise MessageTooLargeError("encoded message exceeds the size limit")
    try:
        return base64.b64decode(b"".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessageError("message is not valid base64") from None


def inflate_redirect(data: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> bytes:
    """Raw DEFLATE decode (SAML Bindings 3.4.4.1) with a hard output limit against deflate bombs."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error:
        raise MalformedMessageError("SAMLRequest is not raw DEFLATE data") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise MessageTooLargeError(f"inflated message exceeds {max_bytes} bytes")
    return out


def deflate_redirect(data: bytes) -> bytes:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def canonical(element: etree._Element) -> bytes:
    """Exclusive C14N without comments, the form signatures are computed over."""
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)
