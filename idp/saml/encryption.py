"""Assertion encryption for an SP's encryption key (SAML Core 6.2, XML Encryption 1.1), in process.

AES-256-GCM content encryption with RSA-OAEP key transport by default; AES-256-CBC only when the SP's
metadata lists CBC and not GCM among its EncryptionMethods.
"""

from __future__ import annotations

import xmlsec
from lxml import etree

from idp.saml import constants as c
from idp.saml.sp import ServiceProvider

_CONTENT_ALGORITHMS = {
    c.ENC_AES256_GCM: (xmlsec.Transform.AES256_GCM, 256),
    c.ENC_AES128_GCM: (xmlsec.Transform.AES128_GCM, 128),
    c.ENC_AES256_CBC: (xmlsec.Transform.AES256, 256),
    c.ENC_AES128_CBC: (xmlsec.Transform.AES128, 128),
}


def content_algorithm(sp: ServiceProvider) -> str:
    """GCM unless the SP declares only CBC block ciphers (its metadata EncryptionMethod list)."""
    declared = [m for m in sp.encryption_methods if m in _CONTENT_ALGORITHMS]
    if not declared:
        return c.ENC_AES256_GCM
    for preferred in (c.ENC_AES256_GCM, c.ENC_AES128_GCM, c.ENC_AES256_CBC, c.ENC_AES128_CBC):
        if preferred in declared:
            return preferred
    return c.ENC_AES256_GCM


def encrypt_assertion(assertion: etree._Element, sp: ServiceProvider) -> etree._Element:
    """Return a saml:EncryptedAssertion wrapping ``assertion`` encrypted for the SP's first encryption key.

    ``assertion`` must be a self-contained element (its own namespace declarations), already signed.
    """
    if not sp.encryption_certs:
        raise ValueError(f"{sp.entity_id} has no encryption certificate")
    algorithm = content_algorithm(sp)
    transform, bits = _CONTENT_ALGORITHMS[algorithm]
    # Encrypt the standalone serialisation, so the plaintext carries every namespace declaration it uses
    # (a peer that decrypts into text, not into our tree, must get a well-formed Assertion back).
    plaintext = etree.tostring(assertion)
    wrapper = etree.Element(c.q(c.NS_SAML, "EncryptedAssertion"), nsmap={"saml": c.NS_SAML})
    enc_data = xmlsec.template.encrypted_data_create(wrapper, transform, type=xmlsec.EncryptionType.ELEMENT, ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_data)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(enc_data, ns="ds")
    enc_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.Transform.RSA_OAEP)
    xmlsec.template.encrypted_data_ensure_cipher_value(enc_key)
    manager = xmlsec.KeysManager()
    manager.add_key(sp.encryption_certs[0].xmlsec_key)
    ctx = xmlsec.EncryptionContext(manager)
    ctx.key = xmlsec.Key.generate(xmlsec.KeyData.AES, bits, xmlsec.KeyDataType.SESSION)
    wrapper.append(ctx.encrypt_binary(enc_data, plaintext))
    return wrapper
