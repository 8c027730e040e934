"""Typed SAML errors, mapped once to protocol or HTTP errors at the edge.

Two families:
- ``CannotRespondError``: there is no trustworthy place to send a SAML answer (unknown SP, unknown ACS,
  malformed or unsafe XML, bad signature, replay). The web layer shows an HTML error page.
- ``SamlRequestError``: the request is authentic and its ACS is known, so the SP gets a SAML status
  response (``build_status_response(err.target, ...)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from idp.saml import constants as c

if TYPE_CHECKING:
    from idp.saml.sso import ResponseTarget


class SamlError(Exception):
    """Base of every error raised by idp.saml."""


class CannotRespondError(SamlError):
    """No SAML response may be sent; show a local error page."""


class MalformedMessageError(CannotRespondError):
    """The message is not a well-formed SAML message of the expected kind."""


class UnsafeXmlError(MalformedMessageError):
    """DTD, entity declaration, comment inside an identifier or another construct we refuse outright."""


class MessageTooLargeError(MalformedMessageError):
    """The message (or its inflated form) exceeds the configured size limit."""


class UnknownServiceProviderError(CannotRespondError):
    """The Issuer is not a registered SP."""


class UnknownEndpointError(CannotRespondError):
    """The requested ACS (or SLO endpoint) does not match the SP's metadata."""


class SignatureError(CannotRespondError):
    """A required signature is missing, invalid, or does not cover the element that is used."""


class ReplayedMessageError(CannotRespondError):
    """The message ID was seen before within its validity window."""


class StaleMessageError(CannotRespondError):
    """IssueInstant outside the accepted window."""


class SamlRequestError(SamlError):
    """An authentic request we refuse with a SAML status response."""

    def __init__(
        self,
        target: ResponseTarget,
        status: str = c.STATUS_REQUESTER,
        sub_status: str | None = None,
        message: str = "",
    ) -> None:
        super().__init__(message or sub_status or status)
        self.target = target
        self.status = status
        self.sub_status = sub_status
        self.status_message = message
