"""SAML 2.0 IdP core: hardened parsing, in-process xmlsec signatures, SSO, SLO, metadata.

Modules, each with one job: ``xml`` (hardened intake), ``signing``, ``encryption``, ``bindings``,
``sp`` (SP metadata -> ServiceProvider), ``sso`` (AuthnRequest checks), ``response`` (Response build),
``attributes`` (names and release), ``slo``, ``metadata`` (Varco's own metadata).
"""
