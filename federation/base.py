"""What the login flow needs from upstream brokers, by capability (the federation issue fills it in).

A strong-login broker (SPID, CIE, eIDAS) sends the browser to an upstream identity provider and,
when the person comes back, hands the flow an `UpstreamIdentity`. The flow links it to the local
account only when it resolves to the same person (fiscal code, or eIDAS person identifier).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class UpstreamIdentity:
    broker: str  # spid | cie | eidas | edugain
    subject: str  # the upstream subject identifier
    assertion_id: str
    fiscal_code: str | None = None
    eidas_id: str | None = None


class StrongLoginBroker(Protocol):
    name: str  # the amr value it yields: spid, cie or eidas
    label: str

    def login_url(self, flow_id: str) -> str:
        """Where to send the browser; the broker returns it to /login?flow=<flow_id>."""
