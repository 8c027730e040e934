"""The request path never starts a process: no xmlsec1 binary, no shell, for any Varco SAML operation."""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlsplit

import pytest
from onelogin_peer import OneLoginSP
from saml_testkit import MemoryReplayGuard, make_subject

from idp.saml.bindings import IncomingMessage, redirect_url
from idp.saml.metadata import build_idp_metadata
from idp.saml.response import build_response, passive_failure
from idp.saml.slo import build_logout_response, parse_logout_request
from idp.saml.sp import parse_sp_metadata
from idp.saml.sso import parse_authn_request


class ProcessSpawned(AssertionError):
    pass


@pytest.fixture
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    def tripwire(*args: object, **kwargs: object) -> None:
        raise ProcessSpawned(f"process spawned: {args[:2]!r}")

    # _execute_child catches every Popen, even from modules that imported Popen by name (pysaml2 does).
    monkeypatch.setattr(subprocess.Popen, "_execute_child", tripwire)
    for name in ("system", "posix_spawn", "posix_spawnp", "fork", "execv", "execve"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, tripwire)


def test_tripwire_fires_when_a_process_is_started(no_processes) -> None:
    with pytest.raises(ProcessSpawned):
        subprocess.run(["xmlsec1", "--version"], check=False)


def test_sso_slo_and_metadata_run_without_starting_any_process(idp, sp_keys, no_processes) -> None:
    peer = OneLoginSP.create(idp, sp_keys, want_encrypted=True)
    metadata = peer.metadata()
    _, authn_query = peer.redirect_authn_request()
    _, passive_query = peer.redirect_authn_request(is_passive=True)
    _, logout_query = peer.logout_request(name_id="_t", session_index="_s")

    sp = parse_sp_metadata(metadata, sign_response=True, release=frozenset({"mail"}))
    lookup = {sp.entity_id: sp}.get
    guard = MemoryReplayGuard()
    request = parse_authn_request(
        IncomingMessage.from_redirect(authn_query), idp=idp, sp_lookup=lookup, replay_guard=guard
    )
    response = build_response(request, make_subject(), idp)  # signed, encrypted, response signed
    passive = parse_authn_request(
        IncomingMessage.from_redirect(passive_query), idp=idp, sp_lookup=lookup, replay_guard=guard
    )
    passive_failure(passive, idp)
    logout = parse_logout_request(
        IncomingMessage.from_redirect(logout_query), idp=idp, sp_lookup=lookup, replay_guard=guard
    )
    location = redirect_url(build_logout_response(logout, idp), idp.signing)
    build_idp_metadata(idp)

    assert b"EncryptedAssertion" in response.xml
    assert urlsplit(location).query.count("Signature=") == 1
