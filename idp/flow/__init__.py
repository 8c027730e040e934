"""The protocol-neutral login flow: LoginRequest in, steps, AuthnResult out (ARCHITECTURE.md)."""

from idp.flow.request import AuthnResult, LoginRequest

__all__ = ["AuthnResult", "LoginRequest"]
