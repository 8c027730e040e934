"""SAML metadata: load, verify, index, MDQ, publish."""
