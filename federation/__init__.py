"""Upstream identity brokers: SPID, CIE, eIDAS and eduGAIN (SAML SP and OIDC RP cores, thin profiles)."""
