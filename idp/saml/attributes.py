"""Attribute names, identifiers derived per SP, and the release decision.

Attributes are named by URI (urn:oid, SAML V2.0 Attribute Profile / REFEDS) and the ``FriendlyName``
Varco uses internally. Nothing is released unless ``released_attribute_names`` allows it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from idp.saml import constants as c
from idp.saml.sp import ServiceProvider

# friendly name -> URI name
ATTRIBUTES: dict[str, str] = {
    "eduPersonPrincipalName": "urn:oid:1.3.6.1.4.1.5923.1.1.1.6",
    "eduPersonAffiliation": "urn:oid:1.3.6.1.4.1.5923.1.1.1.1",
    "eduPersonScopedAffiliation": "urn:oid:1.3.6.1.4.1.5923.1.1.1.9",
    "eduPersonEntitlement": "urn:oid:1.3.6.1.4.1.5923.1.1.1.7",
    "schacHomeOrganization": "urn:oid:1.3.6.1.4.1.25178.1.2.9",
    "schacPersonalUniqueID": "urn:oid:1.3.6.1.4.1.25178.1.2.15",
    "mail": "urn:oid:0.9.2342.19200300.100.1.3",
    "displayName": "urn:oid:2.16.840.1.113730.3.1.241",
    "givenName": "urn:oid:2.5.4.42",
    "sn": "urn:oid:2.5.4.4",
    "pairwise-id": "urn:oasis:names:tc:SAML:attribute:pairwise-id",
    "subject-id": "urn:oasis:names:tc:SAML:attribute:subject-id",
}
FRIENDLY_BY_URI = {uri: name for name, uri in ATTRIBUTES.items()}

# REFEDS R&S v1.3 attribute bundle (pairwise-id/subject-id per the SP's subject-id:req).
RESEARCH_AND_SCHOLARSHIP_BUNDLE = frozenset(
    {"eduPersonPrincipalName", "mail", "displayName", "givenName", "sn", "eduPersonScopedAffiliation"}
)
# Under the Code of Conduct an SP may receive what it declares it needs, except data the CoCo
# leaves to explicit local agreement (national identifiers).
COCO_RELEASABLE = frozenset(ATTRIBUTES) - {"schacPersonalUniqueID"}
COCO_CATEGORIES = frozenset({c.EC_COCO_V1, c.EC_COCO_V2})


def fiscal_code_unique_id(fiscal_code: str) -> str:
    """schacPersonalUniqueID for an Italian codice fiscale (SCHAC URN registry, country it)."""
    return f"urn:schac:personalUniqueID:it:CF:{fiscal_code.strip().upper()}"


def pairwise_value(salt: bytes, sp_entity_id: str, account_id: str) -> str:
    """Stable opaque per-SP identifier: HMAC-SHA256(salt, entityID NUL account_id), base32 lowercase.

    Base32 lowercase without padding fits both persistent NameID and the pairwise-id grammar
    (SAML V2.0 Subject Identifier Attributes Profile 3.3.1: [A-Za-z0-9][A-Za-z0-9=-]{0,126}).
    """
    mac = hmac.new(salt, sp_entity_id.encode() + b"\0" + account_id.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii").rstrip("=").lower()


def released_attribute_names(sp: ServiceProvider) -> frozenset[str]:
    """Friendly names this SP may receive: local policy, plus what its entity categories grant."""
    allowed = set(sp.release)
    if c.EC_RESEARCH_AND_SCHOLARSHIP in sp.entity_categories:
        allowed |= RESEARCH_AND_SCHOLARSHIP_BUNDLE
        allowed.add("pairwise-id" if sp.subject_id_req != "subject-id" else "subject-id")
    if sp.entity_categories & COCO_CATEGORIES:
        for requested in sp.requested_attributes:
            friendly = FRIENDLY_BY_URI.get(requested.name)
            if friendly in COCO_RELEASABLE:
                allowed.add(friendly)
    # SAML V2.0 Subject Identifier Attributes Profile 2.4: honour what the SP says it needs.
    if sp.subject_id_req in ("pairwise-id", "subject-id"):
        allowed.add(sp.subject_id_req)
    elif sp.subject_id_req == "any":
        allowed.add("pairwise-id")
    return frozenset(name for name in allowed if name in ATTRIBUTES)


def release(
    sp: ServiceProvider,
    attributes: Mapping[str, list[str]],
    *,
    account_id: str,
    scope: str,
    salt: bytes,
) -> dict[str, list[str]]:
    """URI name -> values actually released to ``sp``. Unknown or empty attributes are dropped."""
    allowed = released_attribute_names(sp)
    values: dict[str, list[str]] = {}
    for friendly in sorted(allowed):
        if friendly == "pairwise-id":
            found = [f"{pairwise_value(salt, sp.entity_id, account_id)}@{scope}"]
        elif friendly == "subject-id":
            found = [f"{account_id}@{scope}"]
        else:
            found = [v for v in attributes.get(friendly, []) if v]
        if found:
            values[ATTRIBUTES[friendly]] = found
    return values
