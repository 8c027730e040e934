"""SAML 2.0 IdP core: hardened parsing, in-process xmlsec signatures, SSO, SLO, metadata.

Modules, each with one job:
``xml`` hardened intake (no DTDs, size limits, bounded inflate); ``signing`` python-xmlsec enveloped
signatures and Redirect query signatures; ``encryption`` EncryptedAssertion; ``bindings`` Redirect and POST
in and out; ``sp`` SP metadata -> ServiceProvider; ``sso`` AuthnRequest checks; ``response`` Response
building; ``attributes`` names, pairwise identifiers and release; ``slo`` Single Logout messages;
``metadata`` Varco's signed IdP metadata; ``config`` IdpConfig; ``subject`` SamlSubject; ``errors``.
"""
