"""Flow state in the ephemeral store under an opaque id, bound to the browser that started it."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from idp.flow.request import AuthnResult, LoginRequest
from idp.keys import same_text
from idp.store.ephemeral import Ephemeral, Op

FINISHED = "finished"
ABANDONED = "abandoned"
# A fresh flow's id: 16 random characters, the creation time (8 hex digits) and a 22-character MAC.
FRESH_ID_LENGTH = 46


class FlowExpired(Exception):
    """No live flow with that id for this browser: the user starts again."""

    def __init__(self, finished: bool = False) -> None:
        super().__init__("finished" if finished else "expired")
        self.finished = finished


@dataclass
class FlowState:
    id: str
    browser: str
    request: LoginRequest
    created: int
    account_id: str | None = None
    amr: list[str] = field(default_factory=list)
    auth_time: int | None = None
    remember: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = dict(vars(self))  # shallow: json.dumps walks the values itself
        data["request"] = self.request.to_dict()
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str) -> FlowState:
        data = json.loads(raw)
        data["request"] = LoginRequest.from_dict(data["request"])
        return cls(**data)


class FlowStore:
    def __init__(self, ephemeral: Ephemeral, ttl: int, key: bytes) -> None:
        self.ephemeral = ephemeral
        self.ttl = ttl
        self.key = key

    def start(self, request: LoginRequest, browser: str) -> FlowState:
        state = FlowState(id=secrets.token_urlsafe(18), browser=browser, request=request, created=int(time.time()))
        self.save(state)
        return state

    def start_fresh(self, browser: str) -> FlowState:
        """A local login that asks for nothing in particular (someone opening /login). It is not
        stored until it changes: its id carries its creation time and a MAC binding it to the
        browser, so that viewing the login page writes nothing to the store."""
        nonce, created = secrets.token_urlsafe(12), int(time.time())
        flow_id = f"{nonce}{created:08x}{self._fresh_tag(browser, nonce, created)}"
        return FlowState(id=flow_id, browser=browser, request=LoginRequest(), created=created)

    def _fresh_tag(self, browser: str, nonce: str, created: int) -> str:
        digest = hmac.digest(self.key, f"flow|{browser}|{nonce}|{created}".encode(), "sha256")
        return base64.urlsafe_b64encode(digest[:16]).decode()[:22]

    def _fresh(self, flow_id: str, browser: str) -> FlowState | None:
        """The fresh flow `flow_id` names, if it was started by this browser and has not expired."""
        if len(flow_id) != FRESH_ID_LENGTH:
            return None
        nonce, created_hex, tag = flow_id[:16], flow_id[16:24], flow_id[24:]
        try:
            created = int(created_hex, 16)
        except ValueError:
            return None
        if not same_text(tag, self._fresh_tag(browser, nonce, created)):
            return None
        if not 0 <= time.time() - created <= self.ttl:
            return None
        return FlowState(id=flow_id, browser=browser, request=LoginRequest(), created=created)

    def save(self, state: FlowState) -> None:
        self.ephemeral.set(self.key_of(state.id), state.to_json(), self.ttl)

    @staticmethod
    def key_of(flow_id: str) -> str:
        return f"flow:{flow_id}"

    def load(self, flow_id: str | None, browser: str) -> FlowState:
        if not flow_id or len(flow_id) > 64:
            raise FlowExpired()
        return self.loaded(flow_id, browser, self.ephemeral.get(self.key_of(flow_id)))

    def loaded(self, flow_id: str, browser: str, raw: str | None) -> FlowState:
        """The flow `flow_id` of this browser, from what the store holds under `key_of(flow_id)`."""
        if raw is None:
            fresh = self._fresh(flow_id, browser)
            if fresh is None:
                raise FlowExpired()
            return fresh
        if raw == FINISHED:
            raise FlowExpired(finished=True)
        if raw == ABANDONED:
            raise FlowExpired()
        state = FlowState.from_json(raw)
        if not same_text(state.browser, browser):
            raise FlowExpired()
        return state

    def finishing(self, state: FlowState, result: AuthnResult) -> list[Op]:
        """The writes that finish a flow: its result for the frontend that resumes it (taken once),
        and a tombstone, so a form posted again to a finished flow is told it was a replay."""
        writes: list[Op] = []
        if state.request.protocol != "local":
            payload = {"request": state.request.to_dict(), "result": result.to_dict(), "browser": state.browser}
            writes.append(("set", f"flowresult:{state.id}", json.dumps(payload), 300))
        writes.append(("set", self.key_of(state.id), FINISHED, self.ttl))
        return writes

    def abandon(self, state: FlowState) -> None:
        # A marker rather than a deletion: a fresh flow's id would otherwise start over.
        self.ephemeral.set(self.key_of(state.id), ABANDONED, self.ttl)

    def take_result(self, flow_id: str | None, browser: str) -> tuple[LoginRequest, AuthnResult] | None:
        """The finished flow's request and result, once, and only to the browser that ran it."""
        if not flow_id or len(flow_id) > 64:
            return None
        raw = self.ephemeral.take(f"flowresult:{flow_id}")
        if raw is None:
            return None
        payload = json.loads(raw)
        if not same_text(payload["browser"], browser):
            return None
        return LoginRequest.from_dict(payload["request"]), AuthnResult.from_dict(payload["result"])
