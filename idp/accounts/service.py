"""Account services: the one implementation the CLI, the console and the web pages all call."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from sqlalchemy import String, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from idp.accounts.identifiers import (
    InvalidInput,
    canonical_country,
    canonical_email,
    canonical_fiscal_code,
    canonical_student_id,
    check_identifier,
    check_name,
    normalise_identifier,
)
from idp.accounts.passwords import PasswordRejected, Passwords, generate_temporary_password
from idp.ops.audit import log_event, record
from idp.settings import Settings
from idp.store.db import Database
from idp.store.ephemeral import Ephemeral
from idp.store.models import Account, AuditEvent, LoginIdentifier, PersonCodeSequence, loaded, utcnow

POPULATIONS = ("student", "staff", "guest", "service")
STATUSES = ("active", "disabled")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# How often a creation takes a new person code after losing one to a concurrent creation.
PERSON_CODE_ATTEMPTS = 8
KIND_NAMES = {"username": "username", "person_code": "person code", "email": "e-mail", "student_id": "student ID"}


class AccountError(Exception):
    """A request about accounts that cannot be carried out; the message says why."""


class AccountExists(AccountError):
    pass


class AccountNotFound(AccountError):
    pass


@dataclass(frozen=True)
class NewAccount:
    username: str
    given_name: str
    family_name: str
    email: str
    population: str = "student"
    personal_email: str | None = None
    student_id: str | None = None
    citizenship: str | None = None
    fiscal_code: str | None = None


@dataclass(frozen=True)
class LoginOutcome:
    status: str  # ok | invalid | disabled | throttled
    account: Account | None = None


@dataclass(frozen=True)
class LoginLookup:
    """What a typed identifier names before any password is checked: the account (or None), and
    the ephemeral key counting its failed logins (per account, or per identifier when unknown)."""

    typed: str
    normalised: str
    account: Account | None
    throttle_key: str


# The login path's statements, built once (building one costs more CPU than running it).
_ACCOUNTS = Account.__table__
_IDENTIFIER_IN_USE = select(LoginIdentifier.kind).where(LoginIdentifier.value == bindparam("value"))
_IDENTIFIERS_IN_USE = select(LoginIdentifier.value, LoginIdentifier.kind).where(
    LoginIdentifier.value.in_(bindparam("values", expanding=True))
)
_FIND_BY_IDENTIFIER = select(Account).join(LoginIdentifier).where(LoginIdentifier.value == bindparam("identifier"))
# The same lookup in Core, for the login: a row, with no ORM session around it.
_IDENTIFIERS = LoginIdentifier.__table__
_FIND_ROW_BY_IDENTIFIER = (
    select(_ACCOUNTS)
    .join(_IDENTIFIERS, _IDENTIFIERS.c.account_id == _ACCOUNTS.c.id)
    .where(_IDENTIFIERS.c.value == bindparam("identifier"))
)
_RECORD_LOGIN = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("b_account_id"))
    .values(
        login_count=_ACCOUNTS.c.login_count + 1,
        last_login_at=bindparam("b_at"),
        # A new hash only when the argon2 parameters changed; otherwise the stored one stays.
        password_hash=func.coalesce(bindparam("b_new_hash", type_=String()), _ACCOUNTS.c.password_hash),
    )
)
# PostgreSQL: the count and its audit row in one statement (a data-modifying CTE), which is atomic
# by itself: one round trip and no BEGIN/COMMIT. SQLite runs the two statements in a transaction.
_AUDIT = AuditEvent.__table__
_COUNTED = _RECORD_LOGIN.values(updated_at=bindparam("b_at")).returning(_ACCOUNTS.c.id).cte("counted")
_RECORD_LOGIN_AUDITED = insert(_AUDIT).from_select(
    ["at", "action", "actor", "account_id", "detail", "remote_addr"],
    select(
        bindparam("a_at", type_=_AUDIT.c.at.type),
        bindparam("a_action", type_=_AUDIT.c.action.type),
        bindparam("a_actor", type_=_AUDIT.c.actor.type),
        _COUNTED.c.id,
        bindparam("a_detail", type_=_AUDIT.c.detail.type),
        bindparam("a_remote_addr", type_=_AUDIT.c.remote_addr.type),
    ).select_from(_COUNTED),
)

# SQLite: the audit row of a login, written with the count in one transaction.
_AUDIT_ROW = insert(_AUDIT).values(
    at=bindparam("a_at", type_=_AUDIT.c.at.type),
    action=bindparam("a_action", type_=_AUDIT.c.action.type),
    actor=bindparam("a_actor", type_=_AUDIT.c.actor.type),
    account_id=bindparam("a_account_id", type_=_AUDIT.c.account_id.type),
    detail=bindparam("a_detail", type_=_AUDIT.c.detail.type),
    remote_addr=bindparam("a_remote_addr", type_=_AUDIT.c.remote_addr.type),
)


class AccountService:
    def __init__(self, settings: Settings, db: Database, ephemeral: Ephemeral, passwords: Passwords) -> None:
        self.settings = settings
        self.db = db
        self.ephemeral = ephemeral
        self.passwords = passwords
        # The login's statements run straight on the driver (DirectStatement on PostgreSQL,
        # SqliteStatement on an SQLite file): the lookup, and the count with its audit row.
        self._direct = db.dialect if db.has_direct else None
        if self._direct:
            self._find_row = db.direct(_FIND_ROW_BY_IDENTIFIER)
        if self._direct == "postgresql":
            self._record_login_audited = db.direct(_RECORD_LOGIN_AUDITED)
        elif self._direct == "sqlite":
            self._record_login = db.direct(_RECORD_LOGIN.values(updated_at=bindparam("b_at")))
            self._audit_row = db.direct(_AUDIT_ROW)

    # --- creation -------------------------------------------------------------------------
    def create(self, new: NewAccount, password: str | None = None, *, actor: str = "system") -> Account:
        values = self._validated(new)
        password_hash = None
        if password is not None:
            self.passwords.check_choice(
                password, context=(values["username"], values["given_name"], values["family_name"])
            )
            password_hash = self.passwords.hash(password)
        wanted = self._identifier_forms(values)
        for _attempt in range(PERSON_CODE_ATTEMPTS):
            try:
                with self.db.session() as session:
                    code = self._next_person_code(session, set(wanted))
                    account = Account(person_code=code, **values)
                    if password_hash is not None:
                        account.password_hash = password_hash
                        account.password_changed_at = utcnow()
                    forms = {**wanted, code: "person_code"}
                    account.identifiers = [LoginIdentifier(value=value, kind=kind) for value, kind in forms.items()]
                    session.add(account)
                    session.flush()
                    record(session, "account.created", actor, account.id, {"population": account.population})
                    return account
            except IntegrityError as exc:
                taken = self._taken(wanted, values["fiscal_code"])
                if taken:
                    raise AccountExists(taken) from exc
                # Nothing the request asked for is taken: its person code met an identifier
                # committed meanwhile by another creation (PostgreSQL). Take the next code.
        raise AccountError("no free person code after several attempts; run the command again")

    def _taken(self, wanted: dict[str, str], fiscal_code: str | None) -> str | None:
        """Which of a refused creation's identifiers another account holds, said as the error."""
        with self.db.reader() as session:
            held = dict(session.execute(_IDENTIFIERS_IN_USE, {"values": list(wanted)}).all())
            for value, kind in wanted.items():
                if value in held:
                    return (
                        f"{KIND_NAMES[kind]} {value!r} is already used by another account "
                        f"(as its {KIND_NAMES[held[value]]}); choose another"
                    )
            if fiscal_code and session.execute(select(Account.id).where(Account.fiscal_code == fiscal_code)).first():
                return f"fiscal code {fiscal_code} is already used by another account; check whether the person has one"
        return None

    def _validated(self, new: NewAccount) -> dict:
        values = {
            "username": normalise_identifier(check_identifier("username", new.username, 64)),
            "given_name": check_name("given_name", new.given_name),
            "family_name": check_name("family_name", new.family_name),
            "email": canonical_email("email", new.email),
            "population": new.population,
            "personal_email": canonical_email("personal_email", new.personal_email) if new.personal_email else None,
            "student_id": canonical_student_id(new.student_id) if new.student_id else None,
            "citizenship": canonical_country("citizenship", new.citizenship) if new.citizenship else None,
            "fiscal_code": canonical_fiscal_code(new.fiscal_code) if new.fiscal_code else None,
        }
        if not USERNAME.match(values["username"]):
            raise InvalidInput("username", "letters, digits, dot, dash and underscore only (2-64)")
        if new.population not in POPULATIONS:
            raise InvalidInput("population", f"must be one of {', '.join(POPULATIONS)}")
        if values["citizenship"] == "IT" and not values["fiscal_code"]:
            raise InvalidInput("fiscal_code", "required for Italian citizens")
        return values

    def _next_person_code(self, session: Session, wanted: set[str]) -> str:
        """The next person code of the sequence that no account uses as any login identifier.

        Person codes share login's one namespace with usernames and student IDs, which may be
        numeric (a matricola is; some universities make it the username). Such an identifier is
        not refused for looking like a person code: the allocation steps over it instead, so the
        identifiers people chose keep working and a person code is never the reason a creation
        fails. `wanted` holds the new account's own identifiers. On SQLite the creation holds the
        write lock from this first INSERT to its commit, so what this reads stays true; on
        PostgreSQL an identifier committed meanwhile makes the insert fail, and `create` takes the
        next code. Codes stepped over are gaps, never reissued."""
        while True:
            row = PersonCodeSequence()
            session.add(row)
            session.flush()
            code = str(self.settings.login.person_code_start + row.id)
            if code not in wanted and session.execute(_IDENTIFIER_IN_USE, {"value": code}).first() is None:
                return code

    @staticmethod
    def _identifier_forms(values: dict) -> dict[str, str]:
        """The normalised values login will accept for a new account, each with its kind (the
        person code aside); a student ID that is also the username is one identifier."""
        forms: dict[str, str] = {}
        for kind in ("username", "email", "student_id"):
            if values[kind]:
                forms.setdefault(normalise_identifier(values[kind]), kind)
        return forms

    # --- lookup -----------------------------------------------------------------------------
    def find(self, typed: str) -> Account | None:
        with self.db.session() as session:
            return self._find(session, typed)

    @staticmethod
    def _find(session: Session, typed: str) -> Account | None:
        return session.execute(_FIND_BY_IDENTIFIER, {"identifier": normalise_identifier(typed)}).scalar_one_or_none()

    def find_by_fiscal_code(self, fiscal_code: str) -> Account | None:
        """The account of a fiscal code as an upstream identity carries it (`TINIT-` prefix, any
        case); None for a code that is not one (it cannot be stored, so it names no account)."""
        try:
            code = canonical_fiscal_code(fiscal_code)
        except InvalidInput:
            return None
        with self.db.session() as session:
            return session.execute(select(Account).where(Account.fiscal_code == code)).scalar_one_or_none()

    def record_upstream_login(self, account_id: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(Account)
                .where(Account.id == account_id)
                .values(login_count=Account.login_count + 1, last_login_at=utcnow())
            )

    def get(self, account_id: str) -> Account | None:
        with self.db.session() as session:
            return session.get(Account, account_id)

    def require(self, typed: str) -> Account:
        account = self.find(typed)
        if account is None:
            raise AccountNotFound(f"no account {typed!r}")
        return account

    def list(self, population: str | None = None, limit: int = 1000) -> list[Account]:
        with self.db.session() as session:
            stmt = select(Account).order_by(Account.username).limit(limit)
            if population:
                stmt = stmt.where(Account.population == population)
            return list(session.execute(stmt).scalars())

    def count(self) -> int:
        with self.db.session() as session:
            return session.execute(select(func.count()).select_from(Account)).scalar_one()

    # --- password login ---------------------------------------------------------------------
    def find_for_login(self, typed: str) -> LoginLookup:
        """The account any of its identifiers names, as typed (already checked as input)."""
        normalised = normalise_identifier(typed)
        # Read without a transaction, and hold no database connection while argon2 runs. The
        # account comes back detached (never added to a session): the login only reads it.
        if self._direct:
            row = self._find_row.first({"identifier": normalised})
        else:
            with self.db.autocommit() as conn:
                found = conn.execute(_FIND_ROW_BY_IDENTIFIER, {"identifier": normalised}).first()
            row = found._asdict() if found is not None else None
        account = loaded(Account, row) if row is not None else None
        throttle_key = "loginfail:" + (
            f"acct:{account.id}" if account else "id:" + hashlib.sha256(normalised.encode()).hexdigest()
        )
        return LoginLookup(typed, normalised, account, throttle_key)

    def authenticate(
        self,
        typed: str,
        password: str,
        *,
        remote_addr: str | None = None,
        looked_up: tuple[LoginLookup, str | None] | None = None,
    ) -> LoginOutcome:
        """Check a password login. `looked_up` is `find_for_login(typed)` with the value then read
        under its throttle key, when the caller read that in a round trip of its own (the login
        fast path reads it with the flow and the form token)."""
        if looked_up is not None and looked_up[0].typed == typed:
            lookup, failures = looked_up
        else:
            lookup = self.find_for_login(typed)
            failures = self.ephemeral.get(lookup.throttle_key)
        normalised, account, throttle_key = lookup.normalised, lookup.account, lookup.throttle_key
        window = self.settings.login.failed_window_minutes * 60
        if failures is not None and int(failures) >= self.settings.login.failed_attempts_per_account:
            self._audit("login.throttled", normalised[:256], account.id if account else None, {}, remote_addr)
            return LoginOutcome("throttled")
        if account is None:
            self.passwords.burn(password)
            self.ephemeral.incr(throttle_key, window)
            self._audit("login.failed", normalised[:256], None, {"reason": "unknown"}, remote_addr)
            return LoginOutcome("invalid")
        if not self.passwords.verify(account.password_hash, password):
            self.ephemeral.incr(throttle_key, window)
            self._audit("login.failed", account.username, account.id, {"reason": "password"}, remote_addr)
            return LoginOutcome("invalid")
        if account.status != "active":
            self._audit("login.refused", account.username, account.id, {"reason": account.status}, remote_addr)
            return LoginOutcome("disabled", account)
        new_hash = None
        if account.password_hash and self.passwords.needs_rehash(account.password_hash):
            new_hash = self.passwords.hash(password)
        at = utcnow()
        counted = {"b_account_id": account.id, "b_at": at, "b_new_hash": new_hash}
        # The login is counted and audited together, or not at all.
        audit = {"a_at": at, "a_action": "login.password", "a_actor": account.username, "a_remote_addr": remote_addr}
        if self._direct == "postgresql":
            self._record_login_audited.run({**counted, **audit, "a_detail": "{}"})
        elif self._direct == "sqlite":
            with self.db.sqlite_unit() as conn:
                self._record_login.run(counted, conn)
                self._audit_row.run({**audit, "a_account_id": account.id, "a_detail": {}}, conn)
        else:
            with self.db.transaction() as conn:
                conn.execute(_RECORD_LOGIN, counted)
                record(conn, "login.password", account.username, account.id, {}, remote_addr)  # logs its line
        if self._direct:
            log_event("login.password", account.username, account.id, {})
        # The caller's copy shows this login too (the 2FA rules count logins).
        set_committed_value(account, "login_count", account.login_count + 1)
        set_committed_value(account, "last_login_at", at)
        if new_hash:
            set_committed_value(account, "password_hash", new_hash)
        if failures is not None:
            self.ephemeral.delete(throttle_key)
        return LoginOutcome("ok", account)

    def _audit(
        self, action: str, actor: str, account_id: str | None, detail: dict, remote_addr: str | None
    ) -> None:
        with self.db.transaction() as conn:
            record(conn, action, actor, account_id, detail, remote_addr)

    # --- password changes -------------------------------------------------------------------
    def change_password(self, account_id: str, new_password: str, *, actor: str) -> None:
        with self.db.session() as session:
            account = session.get(Account, account_id)
            if account is None:
                raise AccountNotFound("account no longer exists")
            self.passwords.check_choice(
                new_password, context=(account.username, account.given_name, account.family_name, account.person_code)
            )
            if account.password_hash and self.passwords.verify(account.password_hash, new_password):
                raise PasswordRejected("same_as_current")
            account.password_hash = self.passwords.hash(new_password)
            account.password_changed_at = utcnow()
            account.password_must_change = False
            record(session, "password.changed", actor, account.id, {})

    def issue_temporary_password(self, typed: str, *, actor: str) -> str:
        password = generate_temporary_password()
        password_hash = self.passwords.hash(password)
        found = self.find(typed)
        if found is None:
            raise AccountNotFound(f"no account {typed!r}")
        # The failed-login count is cleared first: if the ephemeral store is down, the password is
        # not changed either (it would be one nobody has seen, and the person locked out). (Not
        # inside the transaction: on SQLite the store's write would wait for the transaction's lock.)
        self.ephemeral.delete(f"loginfail:acct:{found.id}")
        with self.db.session() as session:
            account = session.get(Account, found.id)
            account.password_hash = password_hash
            account.password_changed_at = utcnow()
            account.password_must_change = True
            record(session, "password.temporary_issued", actor, account.id, {})
        return password

    def set_status(self, typed: str, status: str, *, actor: str) -> Account:
        if status not in STATUSES:
            raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
        with self.db.session() as session:
            account = self._find(session, typed)
            if account is None:
                raise AccountNotFound(f"no account {typed!r}")
            account.status = status
            record(session, f"account.{'enabled' if status == 'active' else 'disabled'}", actor, account.id, {})
            return account

    def set_personal_email(self, typed: str, email: str, *, actor: str) -> Account:
        personal = canonical_email("personal_email", email)
        with self.db.session() as session:
            account = self._find(session, typed)
            if account is None:
                raise AccountNotFound(f"no account {typed!r}")
            account.personal_email = personal
            record(session, "account.personal_email_set", actor, account.id, {})
            return account

    def unlock(self, typed: str, *, actor: str) -> Account:
        account = self.require(typed)
        self.ephemeral.delete(f"loginfail:acct:{account.id}")
        with self.db.session() as session:
            record(session, "account.unlocked", actor, account.id, {})
        return account

    def password_expires_at(self, account: Account) -> dt.datetime | None:
        if not account.password_changed_at or self.settings.passwords.expiry_days <= 0:
            return None
        changed = account.password_changed_at
        if changed.tzinfo is None:  # SQLite returns naive datetimes
            changed = changed.replace(tzinfo=dt.UTC)
        return changed + dt.timedelta(days=self.settings.passwords.expiry_days)
