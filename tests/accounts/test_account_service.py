"""Accounts: identifiers, populations, fiscal codes, argon2id, timing-equal refusals."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text

from idp.accounts.identifiers import InvalidInput
from idp.accounts.passwords import PasswordRejected
from idp.accounts.service import AccountExists, NewAccount
from idp.store.db import Database, alembic_config
from idp.store.models import Account, AuditEvent, LoginIdentifier


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


# --- person codes and the identifiers people choose --------------------------------------------


@pytest.mark.parametrize("field", ["username", "student_id"])
def test_a_numeric_identifier_is_stepped_over_by_the_person_codes(services, field):
    """A username or student ID that is a future person code takes nothing from anyone: the
    allocation skips that code, on SQLite (which reuses a rolled-back sequence number) too."""
    first = services.accounts.create(new("a.one"))
    code = int(first.person_code)
    numeric = str(code + 2)
    fields = {"username": numeric} if field == "username" else {"username": "b.two", "student_id": numeric}
    taker = services.accounts.create(new(**fields))
    assert taker.person_code == str(code + 1)
    assert services.accounts.create(new("dave")).person_code == str(code + 3)
    assert services.accounts.create(new("erin")).person_code == str(code + 4)
    assert services.accounts.find(numeric).id == taker.id


def test_a_username_that_is_its_own_next_person_code_gets_the_one_after(services):
    code = int(services.accounts.create(new("a.one")).person_code)
    account = services.accounts.create(new(str(code + 1)))
    assert (account.username, account.person_code) == (str(code + 1), str(code + 2))


def test_a_person_code_taken_by_a_creation_committed_meanwhile_is_skipped(services):
    """Another process commits the next person code as a username while this creation runs: on
    PostgreSQL the creation's insert waits for it and fails, and it takes the next code; on SQLite
    it waits for the write lock and then steps over the code."""
    code = int(services.accounts.create(new("a.one")).person_code)
    created: list = []

    def create_dave() -> None:
        try:
            created.append(services.accounts.create(new("dave")))
        except Exception as exc:  # noqa: BLE001 - handed to the test's thread
            created.append(exc)

    with services.db.session() as other:
        rival = Account(
            username=str(code + 1),
            person_code="rival",
            email="rival@uni.example.it",
            given_name="R",
            family_name="R",
            population="student",
        )
        rival.identifiers = [LoginIdentifier(value=str(code + 1), kind="username")]
        other.add(rival)
        other.flush()
        worker = threading.Thread(target=create_dave)
        worker.start()
        time.sleep(0.5)  # dave's insert is now waiting on this transaction (or its lock)
    worker.join(30)
    assert not worker.is_alive()
    [dave] = created
    assert isinstance(dave, Account), dave
    assert dave.person_code == str(code + 2)
    assert services.accounts.find(str(code + 2)).id == dave.id


def test_parallel_creations_get_distinct_person_codes_around_numeric_usernames(services):
    code = int(services.accounts.create(new("a.one")).person_code)
    reserved = {str(code + 3), str(code + 5)}
    for username in sorted(reserved):
        services.accounts.create(new(username))
    start, outcomes = threading.Barrier(8), []

    def create(index: int) -> None:
        start.wait()
        try:
            outcomes.append(services.accounts.create(new(f"user.{index}")))
        except Exception as exc:  # noqa: BLE001 - handed to the test's thread
            outcomes.append(exc)

    workers = [threading.Thread(target=create, args=(index,)) for index in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert all(isinstance(outcome, Account) for outcome in outcomes), outcomes
    codes = {outcome.person_code for outcome in outcomes}
    assert len(codes) == 8 and not codes & reserved
    assert services.accounts.count() == 11


def test_a_taken_identifier_is_named_in_the_error(services):
    services.accounts.create(new("mario.rossi", student_id="20012345"))
    with pytest.raises(AccountExists) as taken:
        services.accounts.create(new("20012345"))
    said = "username '20012345' is already used by another account (as its student ID); choose another"
    assert str(taken.value) == said


# --- fiscal codes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["RSSMRA85T10H501O\x1b", "RSSMRA85T10H501O\u200b", "\u202eRSSMRA85T10H501O", "RSSMRA-85T10H501O"]
)
def test_a_fiscal_code_with_anything_but_its_sixteen_characters_is_refused(services, typed):
    with pytest.raises(InvalidInput) as refused:
        services.accounts.create(new(citizenship="IT", fiscal_code=typed))
    assert refused.value.field == "fiscal_code"
    assert services.accounts.count() == 0


@pytest.mark.parametrize(
    "typed", ["ＲSSMRA85T10H501O", " rssmra85t10h501o ", "TINIT-RSSMRA85T10H501O", "RSS MRA 85T10 H501O"]
)
def test_a_fiscal_code_names_one_person_however_it_is_typed(services, typed):
    services.accounts.create(new(citizenship="IT", fiscal_code="RSSMRA85T10H501O"))
    with pytest.raises(AccountExists) as taken:
        services.accounts.create(new("anna.b", citizenship="IT", fiscal_code=typed))
    assert "fiscal code RSSMRA85T10H501O is already used" in str(taken.value)
    assert services.accounts.count() == 1


def test_a_fiscal_code_typed_in_groups_is_stored_without_its_spaces(services):
    # As a tessera sanitaria or a PDF prints it.
    account = services.accounts.create(new(citizenship="IT", fiscal_code="RSS MRA 85T10 H501O"))
    assert account.fiscal_code == "RSSMRA85T10H501O"


def test_an_upstream_fiscal_code_finds_its_account_with_or_without_the_tinit_prefix(services):
    account = services.accounts.create(new(citizenship="IT", fiscal_code="RSSMRA85T10H501O"))
    for carried in ("RSSMRA85T10H501O", "TINIT-RSSMRA85T10H501O", "tinit-rssmra85t10h501o", " ＲSSMRA85T10H501O "):
        assert services.accounts.find_by_fiscal_code(carried).id == account.id
    for nothing in ("RSSMRA85T10H501O\x00", "RSSMRA85T10H501O\u200b", "X" * 1000, ""):
        assert services.accounts.find_by_fiscal_code(nothing) is None


def test_an_omocode_is_the_fiscal_code_of_another_person(services):
    """The Agenzia delle Entrate issues an omocode (digits replaced by letters) to a second person
    whose code would equal the first one's: the two are different people, with accounts of their own."""
    first = services.accounts.create(new(citizenship="IT", fiscal_code="RSSMRA85T10H501O"))
    second = services.accounts.create(new("mario.rossi2", citizenship="IT", fiscal_code="RSSMRA85T10H50MG"))
    assert services.accounts.find_by_fiscal_code("RSSMRA85T10H501O").id == first.id
    assert services.accounts.find_by_fiscal_code("TINIT-RSSMRA85T10H50MG").id == second.id


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"])
def test_the_migration_puts_stored_fiscal_codes_in_their_canonical_form(engine, tmp_path):
    """Rows stored before canonical fiscal codes: each becomes its code, or is cleared when that is
    an older account's already; each change is audited with the value it replaced."""
    from tests.conftest import PG_URL, with_search_path

    schema = f"varco_t_{secrets.token_hex(4)}"
    admin = create_engine(PG_URL)
    if engine == "postgresql":
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = with_search_path(PG_URL, schema)
    else:
        url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    try:
        command.upgrade(alembic_config(db.engine), "0005bclogout")
        stored = {  # as `varco users add` stored them, in order of creation (16 characters fit PostgreSQL)
            "canonical": "RSSMRA85T10H501O",
            "fullwidth_twin": "ＲSSMRA85T10H501O",
            "fullwidth_only": "ＢNCNNA90A41F205W",
            "omocode": "RSSMRA85T10H50MG",
        }
        now = dt.datetime.now(dt.UTC)
        with db.engine.begin() as conn:
            for index, (username, fiscal_code) in enumerate(stored.items()):
                conn.execute(
                    Account.__table__.insert().values(
                        id=username,
                        username=username,
                        person_code=str(index),
                        email=f"{username}@uni.example.it",
                        given_name="M",
                        family_name="R",
                        population="student",
                        fiscal_code=fiscal_code,
                        status="active",
                        password_must_change=False,
                        login_count=0,
                        mfa_upstream=False,
                        created_at=now + dt.timedelta(seconds=index),
                        updated_at=now,
                    )
                )
        command.upgrade(alembic_config(db.engine), "head")
        with db.engine.connect() as conn:
            codes = dict(conn.execute(select(Account.id, Account.fiscal_code)).all())
            audited = {
                row.account_id: row.detail
                for row in conn.execute(select(AuditEvent.account_id, AuditEvent.detail)).all()
            }
    finally:
        db.dispose()
        if engine == "postgresql":
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    assert codes == {
        "canonical": "RSSMRA85T10H501O",
        "fullwidth_twin": None,
        "fullwidth_only": "BNCNNA90A41F205W",
        "omocode": "RSSMRA85T10H50MG",
    }
    assert audited == {
        "fullwidth_twin": {"old": "ＲSSMRA85T10H501O", "new": None},
        "fullwidth_only": {"old": "ＢNCNNA90A41F205W", "new": "BNCNNA90A41F205W"},
    }


# --- e-mail addresses, student IDs, names, citizenship ---------------------------------------------

NOT_ONE_ADDRESS = [
    "a,b@uni.example.it",  # a second recipient to smtplib's send_message
    "a;b@uni.example.it",
    "a@uni..example.it",
    "a@-uni-.example.it",
    '"a"@uni.example.it',
    "a\u200b@uni.example.it",  # reads as a@uni.example.it
    "a\u202e@uni.example.it",
    "a@uni.example.it\u2060",
    "Mario <a@uni.example.it>",
]


@pytest.mark.parametrize("typed", NOT_ONE_ADDRESS)
def test_an_institutional_address_must_be_one_plain_mailbox(services, typed):
    with pytest.raises(InvalidInput) as refused:
        services.accounts.create(new(email=typed))
    assert refused.value.field == "email"
    assert services.accounts.count() == 0


@pytest.mark.parametrize("typed", NOT_ONE_ADDRESS)
def test_a_personal_address_must_be_one_plain_mailbox(services, typed):
    with pytest.raises(InvalidInput) as refused:
        services.accounts.create(new(personal_email=typed))
    assert refused.value.field == "personal_email"
    account = services.accounts.create(new())
    with pytest.raises(InvalidInput) as refused:
        services.accounts.set_personal_email(account.username, typed, actor="test")
    assert refused.value.field == "personal_email"
    assert services.accounts.get(account.id).personal_email is None


def test_an_address_is_stored_as_login_compares_it(services):
    account = services.accounts.create(new(email="Mario.Rossi@UNI.Example.IT", personal_email="ｍario@Example.ORG"))
    assert (account.email, account.personal_email) == ("mario.rossi@uni.example.it", "mario@example.org")


@pytest.mark.parametrize("typed", ["٢٠٠١٢٣٤٥", "۲۰۰۱۲۳۴۵", "२००१२३४५", "2001\u200b2345", "2001-2345", "用户"])
def test_a_student_id_is_ascii_letters_and_digits(services, typed):
    with pytest.raises(InvalidInput) as refused:
        services.accounts.create(new(student_id=typed))
    assert refused.value.field == "student_id"


def test_a_student_id_in_fullwidth_digits_is_the_one_login_reads(services):
    account = services.accounts.create(new(student_id="20012345"))
    with pytest.raises(AccountExists):
        services.accounts.create(new("anna.b", student_id="２００１２３４５"))
    assert services.accounts.find("２００１２３４５").id == account.id
    assert services.accounts.create(new("s.one", student_id="S123456")).student_id == "s123456"


@pytest.mark.parametrize(
    ("given", "family", "field"),
    [
        ("\u200b", "Rossi", "given_name"),
        ("Mario", "\u2060", "family_name"),
        ("\u3164", "Rossi", "given_name"),  # HANGUL FILLER: a letter that draws nothing
        ("-- .", "Rossi", "given_name"),
        ("\u202eoiraM", "Rossi", "given_name"),  # RIGHT-TO-LEFT OVERRIDE
        ("Mario", "Rossi\u2067", "family_name"),  # RIGHT-TO-LEFT ISOLATE
        ("Ma\u200brio", "Rossi", "given_name"),
        ("\u200cMario", "Rossi", "given_name"),  # a joiner outside a word
    ],
)
def test_a_name_has_a_letter_and_no_invisible_formatting(services, given, family, field):
    with pytest.raises(InvalidInput) as refused:
        services.accounts.create(new(given_name=given, family_name=family))
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("given", "family"), [("Maria José", "Núñez-O'Neill"), ("علی\u200cرضا", "احمدی"), ("क्\u200dष", "Devi")]
)
def test_names_keep_their_letters_and_the_joiners_inside_words(services, given, family):
    account = services.accounts.create(new(given_name=f" {given} ", family_name=family))
    assert (account.given_name, account.family_name) == (given, family)


@pytest.mark.parametrize("typed", ["\ufb00", "ZZ", "XK", "EU", "UK", "I T", "İT", "ITA", "I\u200bT"])
def test_citizenship_is_an_iso_3166_country_code(services, typed):
    with pytest.raises(InvalidInput) as refused:
        services.accounts.create(new(citizenship=typed))
    assert refused.value.field == "citizenship"


def test_citizenship_is_stored_as_its_upper_case_code(services):
    assert services.accounts.create(new("a.one", citizenship=" ｆr ")).citizenship == "FR"
    assert services.accounts.create(new("b.two", citizenship="gb")).citizenship == "GB"
