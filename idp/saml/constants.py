"""SAML 2.0 names used across idp.saml (namespaces, bindings, formats, status codes, algorithms)."""

from saml2 import BINDING_HTTP_POST as _POST
from saml2 import BINDING_HTTP_REDIRECT as _REDIRECT

NS_SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_XENC = "http://www.w3.org/2001/04/xmlenc#"
NS_MDUI = "urn:oasis:names:tc:SAML:metadata:ui"
NS_MDATTR = "urn:oasis:names:tc:SAML:metadata:attribute"
NS_SHIBMD = "urn:mace:shibboleth:metadata:1.0"
NS_XML = "http://www.w3.org/XML/1998/namespace"

BINDING_HTTP_POST = _POST
BINDING_HTTP_REDIRECT = _REDIRECT

NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
SUPPORTED_NAMEID_FORMATS = (NAMEID_TRANSIENT, NAMEID_PERSISTENT, NAMEID_EMAIL, NAMEID_UNSPECIFIED)

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_VERSION_MISMATCH = "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch"
STATUS_NO_AUTHN_CONTEXT = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"
STATUS_NO_PASSIVE = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
STATUS_REQUEST_UNSUPPORTED = "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported"
STATUS_INVALID_NAMEID_POLICY = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"
STATUS_UNSUPPORTED_BINDING = "urn:oasis:names:tc:SAML:2.0:status:UnsupportedBinding"
STATUS_AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
STATUS_REQUEST_DENIED = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
STATUS_PARTIAL_LOGOUT = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"

CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
ATTRNAME_FORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"

AC_PASSWORD_PROTECTED = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105
AC_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"  # noqa: S105
AC_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
AC_REFEDS_MFA = "https://refeds.org/profile/mfa"

ENTITY_CATEGORY = "http://macedir.org/entity-category"
ENTITY_CATEGORY_SUPPORT = "http://macedir.org/entity-category-support"
EC_RESEARCH_AND_SCHOLARSHIP = "http://refeds.org/category/research-and-scholarship"
EC_COCO_V1 = "http://www.geant.net/uri/dataprotection-code-of-conduct/v1"
EC_COCO_V2 = "https://refeds.org/category/code-of-conduct/v2"
SUBJECT_ID_REQ = "urn:oasis:names:tc:SAML:profiles:subject-id:req"

# XML Signature algorithms (RFC 6931 and XMLDSig core).
SIG_RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SIG_RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
SIG_RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
SIG_RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
DIGEST_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
DIGEST_SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
C14N_EXCLUSIVE = "http://www.w3.org/2001/10/xml-exc-c14n#"
TRANSFORM_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

ENC_AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
ENC_AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
ENC_AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
ENC_AES128_CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
KEYTRANSPORT_RSA_OAEP = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"


def q(ns: str, local: str) -> str:
    """Clark-notation qualified name, as lxml wants it."""
    return f"{{{ns}}}{local}"
