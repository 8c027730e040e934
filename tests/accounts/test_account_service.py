"""Accounts: identifiers, populations, fiscal codes, argon2id, timing-equal refusals."""

from __future__ import annotations

import pytest

from idp.accounts.identifiers import InvalidInput
from idp.accounts.passwords import PasswordRejected
from idp.accounts.service import AccountExists, NewAccount


def new(username: str = "mario.rossi", **fields) -> NewAccount:
    values = {"given_name": "Mario", "family_name": "Rossi", "email": f"{username}@uni.example.it"}
    values.update(fields)
    return NewAccount(username=username, **values)


def test_person_codes_are_issued_in_sequence_and_unique(services):
    first = services.accounts.create(new("a.one"))
    second = services.accounts.create(new("b.two"))
    assert int(second.person_code) == int(first.person_code) + 1
    assert int(first.person_code) > services.settings.login.person_code_start


def test_passwords_are_stored_as_argon2id_with_configured_parameters(services):
    account = services.accounts.create(new(), "Correct-Horse-9")
    assert account.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "Correct-Horse-9" not in account.password_hash


def test_an_identifier_cannot_belong_to_two_accounts(services):
    services.accounts.create(new("mario.rossi", student_id="20012345"))
    with pytest.raises(AccountExists):
        services.accounts.create(new("20012345"))
    with pytest.raises(AccountExists):
        services.accounts.create(new("anna.b", email="mario.rossi@uni.example.it"))
    assert services.accounts.count() == 1


def test_identifiers_are_normalised_before_storage(services):
    account = services.accounts.create(new("Mario.Rossi", email=" Mario.Rossi@UNI.example.it "))
    assert account.username == "mario.rossi"
    assert account.email == "mario.rossi@uni.example.it"
    # NFKC: a full-width form finds the same account.
    assert services.accounts.find("ｍａｒｉｏ.ｒｏｓｓｉ").id == account.id


def test_italian_citizens_need_a_valid_fiscal_code(services):
    with pytest.raises(InvalidInput) as missing:
        services.accounts.create(new(citizenship="IT"))
    assert missing.value.field == "fiscal_code"
    with pytest.raises(InvalidInput) as invalid:
        services.accounts.create(new(citizenship="IT", fiscal_code="RSSMRA85T10H501X"))
    assert invalid.value.field == "fiscal_code"
    account = services.accounts.create(new(citizenship="it", fiscal_code="rssmra85t10h501o"))
    assert account.fiscal_code == "RSSMRA85T10H501O"
    assert account.citizenship == "IT"


def test_unknown_population_is_refused(services):
    with pytest.raises(InvalidInput) as error:
        services.accounts.create(new(population="alien"))
    assert error.value.field == "population"


def test_a_hash_made_with_older_parameters_is_replaced_at_the_next_login(services):
    from argon2 import PasswordHasher

    configured = services.passwords.hasher
    services.passwords.hasher = PasswordHasher(time_cost=1, memory_cost=4096, parallelism=1)
    created = services.accounts.create(new(), "Correct-Horse-9")
    services.passwords.hasher = configured
    assert created.password_hash.startswith("$argon2id$v=19$m=4096,t=1,p=1$")
    outcome = services.accounts.authenticate("mario.rossi", "Correct-Horse-9")
    assert outcome.status == "ok"
    stored = services.accounts.get(created.id)
    assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert outcome.account.password_hash == stored.password_hash
    assert stored.login_count == 1
    # The new hash holds the same password; a login with current parameters leaves it as it is.
    assert services.accounts.authenticate("mario.rossi", "Correct-Horse-9").status == "ok"
    assert services.accounts.get(created.id).password_hash == stored.password_hash
    assert services.accounts.authenticate("mario.rossi", "Wrong-Horse-9").status == "invalid"


def test_weak_initial_password_leaves_no_account(services):
    with pytest.raises(PasswordRejected):
        services.accounts.create(new(), "qwerty123")
    assert services.accounts.count() == 0


def test_unknown_user_costs_one_argon2_verification_like_a_wrong_password(services):
    services.accounts.create(new(), "Correct-Horse-9")

    class CountingHasher:
        """Delegates to the real argon2 hasher and records what each verification was against."""

        def __init__(self, inner) -> None:
            self.inner = inner
            self.calls: list[str] = []

        def verify(self, stored, password):
            self.calls.append(stored)
            return self.inner.verify(stored, password)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    spy = CountingHasher(services.passwords.hasher)
    services.passwords.hasher = spy
    calls = spy.calls
    assert services.accounts.authenticate("nobody", "Correct-Horse-9").status == "invalid"
    assert services.accounts.authenticate("mario.rossi", "wrong-password").status == "invalid"
    assert len(calls) == 2
    assert calls[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert calls[0] != calls[1]


def test_service_accounts_are_a_population(services):
    account = services.accounts.create(new("dip.fisica", population="service"), "Shared-mailbox-2026")
    assert account.population == "service"
    assert services.accounts.authenticate("dip.fisica", "Shared-mailbox-2026").status == "ok"


def test_a_lookup_read_beforehand_counts_only_for_the_identifier_it_was_made_for(services):
    mario = services.accounts.create(new(), "Correct-Horse-9")
    other = services.accounts.create(new("anna.bianchi"), "Another-Horse-7")
    limit = services.settings.login.failed_attempts_per_account
    lookup = services.accounts.find_for_login("  Mario.Rossi ")
    assert (lookup.account.id, lookup.normalised) == (mario.id, "mario.rossi")
    assert lookup.throttle_key == f"loginfail:acct:{mario.id}"
    # The count the caller read decides, as the store's own would.
    throttled = services.accounts.authenticate("  Mario.Rossi ", "Correct-Horse-9", looked_up=(lookup, str(limit)))
    assert throttled.status == "throttled"
    assert services.accounts.authenticate("  Mario.Rossi ", "Correct-Horse-9", looked_up=(lookup, None)).status == "ok"
    # Handed a lookup of another identifier, the check makes its own.
    outcome = services.accounts.authenticate("anna.bianchi", "Another-Horse-7", looked_up=(lookup, str(limit)))
    assert outcome.status == "ok" and outcome.account.id == other.id
    unknown = services.accounts.find_for_login("nobody")
    assert unknown.account is None and unknown.throttle_key.startswith("loginfail:id:")
