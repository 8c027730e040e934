"""SAML HTTP-Redirect and HTTP-POST bindings: decode what arrives, encode what leaves.

SAML Bindings 3.4 (HTTP-Redirect) and 3.5 (HTTP-POST).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote_plus

from lxml import etree

from idp.saml import constants as c
from idp.saml.credentials import SigningCredential
from idp.saml.errors import MalformedMessageError
from idp.saml.signing import sign_redirect_query
from idp.saml.xml import (
    DEFAULT_MAX_XML_BYTES,
    b64decode_strict,
    deflate_redirect,
    inflate_redirect,
    parse_xml,
)

DEFLATE_ENCODING = "urn:oasis:names:tc:SAML:2.0:bindings:URL-Encoding:DEFLATE"


@dataclass(frozen=True)
class IncomingMessage:
    """A SAML protocol message as received, before any parsing.

    For HTTP-Redirect, ``raw_query`` is the query string exactly as sent (still URL-encoded): the
    signature covers those octets.
    """

    binding: str
    param: str  # "SAMLRequest" or "SAMLResponse"
    encoded: str
    relay_state: str | None = None
    raw_query: str | None = None

    @classmethod
    def from_redirect(cls, raw_query: str | bytes) -> IncomingMessage:
        if isinstance(raw_query, bytes):
            raw_query = raw_query.decode("ascii", "replace")
        values: dict[str, str] = {}
        for part in raw_query.split("&"):
            name, _, value = part.partition("=")
            if name in values:
                raise MalformedMessageError(f"query parameter {name} repeated")
            values[name] = unquote_plus(value)
        # SAML Bindings 3.4.4: DEFLATE is the only encoding Varco (or anyone) implements.
        if values.get("SAMLEncoding", DEFLATE_ENCODING) != DEFLATE_ENCODING:
            raise MalformedMessageError("unsupported SAMLEncoding")
        return cls._build(c.BINDING_HTTP_REDIRECT, values, raw_query)

    @classmethod
    def from_post(cls, form: dict[str, str]) -> IncomingMessage:
        return cls._build(c.BINDING_HTTP_POST, form, None)

    @classmethod
    def _build(cls, binding: str, values: dict[str, str], raw_query: str | None) -> IncomingMessage:
        present = [p for p in ("SAMLRequest", "SAMLResponse") if values.get(p)]
        if len(present) != 1:
            raise MalformedMessageError("expected exactly one of SAMLRequest or SAMLResponse")
        return cls(binding, present[0], values[present[0]], values.get("RelayState"), raw_query)

    @property
    def is_query_signed(self) -> bool:
        return self.binding == c.BINDING_HTTP_REDIRECT and "Signature=" in (self.raw_query or "")

    def xml(self, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> etree._Element:
        """Decode (and for Redirect, bounded-inflate) then parse with the hardened parser."""
        # Base64 inflates 4/3; a deflated message can be at most as large as the limit.
        raw = b64decode_strict(self.encoded, max_bytes=max_bytes)
        if self.binding == c.BINDING_HTTP_REDIRECT:
            raw = inflate_redirect(raw, max_bytes=max_bytes)
        return parse_xml(raw, max_bytes=max_bytes)


@dataclass(frozen=True)
class OutgoingMessage:
    """A SAML message ready to send: an auto-submitting POST form, or a Redirect URL."""

    binding: str
    url: str
    param: str
    encoded: str
    relay_state: str | None = None
    message_id: str = ""

    def form_fields(self) -> dict[str, str]:
        fields = {self.param: self.encoded}
        if self.relay_state is not None:
            fields["RelayState"] = self.relay_state
        return fields

    @property
    def xml(self) -> bytes:
        raw = base64.b64decode(self.encoded)
        if self.binding == c.BINDING_HTTP_REDIRECT:
            return inflate_redirect(raw, max_bytes=16 * 1024 * 1024)
        return raw


def encode_post(xml_bytes: bytes) -> str:
    return base64.b64encode(xml_bytes).decode("ascii")


def post_message(url: str, param: str, xml_bytes: bytes, relay_state: str | None, message_id: str) -> OutgoingMessage:
    return OutgoingMessage(c.BINDING_HTTP_POST, url, param, encode_post(xml_bytes), relay_state, message_id)


def redirect_message(
    url: str,
    param: str,
    xml_bytes: bytes,
    relay_state: str | None,
    message_id: str,
) -> OutgoingMessage:
    """A Redirect-binding message; ``redirect_url`` signs it and gives the Location header value."""
    encoded = base64.b64encode(deflate_redirect(xml_bytes)).decode("ascii")
    return OutgoingMessage(c.BINDING_HTTP_REDIRECT, url, param, encoded, relay_state, message_id)


def redirect_url(message: OutgoingMessage, credential: SigningCredential) -> str:
    params = [(message.param, message.encoded)]
    if message.relay_state is not None:
        params.append(("RelayState", message.relay_state))
    query = sign_redirect_query(params, credential)
    return message.url + ("&" if "?" in message.url else "?") + query
