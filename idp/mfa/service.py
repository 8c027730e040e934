"""Second-factor services: enrol, verify, remove; used by the login flow, /account and the CLI alike."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets

from sqlalchemy import delete, func, select, update

from idp.keys import KeyRing, same_text
from idp.mfa import totp
from idp.mfa.policy import now
from idp.mfa.sms import SmsError
from idp.ops.audit import record
from idp.settings import MfaSettings
from idp.store.db import Database
from idp.store.ephemeral import Ephemeral
from idp.store.models import Account, MfaCredential, RecoveryCode, utcnow

log = logging.getLogger("varco.mfa")

RECOVERY_CODES = 10
SMS_TTL = 600
SMS_RESEND_SECONDS = 60
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class MfaError(Exception):
    """A second-factor action that cannot be done; `code` names why (a message key)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class MfaService:
    def __init__(
        self, settings: MfaSettings, db: Database, ephemeral: Ephemeral, keys: KeyRing, sms_gateway=None
    ) -> None:  # type: ignore[no-untyped-def]
        self.settings = settings
        self.db = db
        self.ephemeral = ephemeral
        self.keys = keys
        self.sms = sms_gateway

    # --- listing ------------------------------------------------------------------------------
    def factors(self, account_id: str) -> list[MfaCredential]:
        with self.db.session() as session:
            stmt = (
                select(MfaCredential).where(MfaCredential.account_id == account_id).order_by(MfaCredential.created_at)
            )
            return list(session.execute(stmt).scalars())

    def has_factor(self, account_id: str) -> bool:
        with self.db.session() as session:
            stmt = select(func.count()).select_from(MfaCredential).where(MfaCredential.account_id == account_id)
            return session.execute(stmt).scalar_one() > 0

    def recovery_codes_left(self, account_id: str) -> int:
        with self.db.session() as session:
            stmt = (
                select(func.count())
                .select_from(RecoveryCode)
                .where(RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None))
            )
            return session.execute(stmt).scalar_one()

    # --- TOTP -----------------------------------------------------------------------------------
    def _seal(self, credential_id: str, secret: str) -> str:
        return self.keys.encrypt(secret.encode(), f"totp:{credential_id}".encode())

    def _open(self, credential: MfaCredential) -> str:
        return self.keys.decrypt(credential.secret_enc, f"totp:{credential.id}".encode()).decode()

    def confirm_totp(self, account_id: str, secret: str, code: str, label: str = "App", actor: str = "") -> None:
        """Enrolment ends with a first valid code (seed 002: "enter the OTP created by the APP")."""
        counter = totp.matching_counter(secret, totp.clean_code(code))
        if counter is None:
            raise MfaError("wrong_code")
        with self.db.session() as session:
            credential = MfaCredential(account_id=account_id, kind="totp", label=label[:100], last_counter=counter)
            session.add(credential)
            session.flush()
            credential.secret_enc = self._seal(credential.id, secret)
            record(session, "mfa.enrolled", actor or account_id, account_id, {"kind": "totp"})

    def enrol_totp_secret(self, account_id: str, secret: str, actor: str) -> None:
        """Operator migration (`varco users add --totp-secret`): the secret is trusted as given."""
        with self.db.session() as session:
            credential = MfaCredential(account_id=account_id, kind="totp", label="Imported")
            session.add(credential)
            session.flush()
            credential.secret_enc = self._seal(credential.id, secret)
            record(session, "mfa.enrolled", actor, account_id, {"kind": "totp", "imported": True})

    def verify_totp(self, account_id: str, code: str) -> bool:
        """Accept a code once: the credential's last accepted step is raised atomically, so the same
        code (or an older one) never works twice, on any node (RFC 6238 5.2)."""
        code = totp.clean_code(code)
        with self.db.session() as session:
            stmt = select(MfaCredential).where(MfaCredential.account_id == account_id, MfaCredential.kind == "totp")
            for credential in session.execute(stmt).scalars():
                counter = totp.matching_counter(self._open(credential), code)
                if counter is None:
                    continue
                accepted = session.execute(
                    update(MfaCredential)
                    .where(
                        MfaCredential.id == credential.id,
                        (MfaCredential.last_counter.is_(None)) | (MfaCredential.last_counter < counter),
                    )
                    .values(last_counter=counter, last_used_at=utcnow())
                )
                return accepted.rowcount == 1
        return False

    # --- SMS --------------------------------------------------------------------------------------
    def send_sms_code(self, account_id: str, phone: str, purpose: str) -> None:
        if self.sms is None:
            raise MfaError("sms_unavailable")
        if not self.ephemeral.add(f"smsresend:{account_id}:{purpose}", "1", SMS_RESEND_SECONDS):
            raise MfaError("sms_resend_too_soon")
        code = f"{secrets.randbelow(10**6):06d}"
        digest = hashlib.sha256(f"{account_id}:{purpose}:{code}".encode()).hexdigest()
        self.ephemeral.set(f"sms:{account_id}:{purpose}", json.dumps({"hash": digest, "phone": phone}), SMS_TTL)
        try:
            self.sms.send(phone, f"{code} is your {self.settings.totp_issuer} code. It expires in 10 minutes.")
        except SmsError as exc:
            log.error("SMS gateway failed: %s", exc)
            self.ephemeral.delete(f"sms:{account_id}:{purpose}")
            self.ephemeral.delete(f"smsresend:{account_id}:{purpose}")
            raise MfaError("sms_unavailable") from exc

    def check_sms_code(self, account_id: str, purpose: str, code: str) -> str | None:
        """The phone the code was sent to when `code` is right (the code is then used up), else None."""
        code = totp.clean_code(code)
        raw = self.ephemeral.get(f"sms:{account_id}:{purpose}")
        if raw is None or not totp.CODE.match(code):
            return None
        stored = json.loads(raw)
        digest = hashlib.sha256(f"{account_id}:{purpose}:{code}".encode()).hexdigest()
        if not same_text(digest, stored["hash"]):
            return None
        if self.ephemeral.take(f"sms:{account_id}:{purpose}") is None:
            return None  # used by a concurrent request
        return stored["phone"]

    def add_sms(self, account_id: str, phone: str, actor: str) -> None:
        with self.db.session() as session:
            session.add(MfaCredential(account_id=account_id, kind="sms", label=phone[-4:], phone=phone))
            record(session, "mfa.enrolled", actor, account_id, {"kind": "sms"})

    def sms_phones(self, account_id: str) -> list[str]:
        return [c.phone for c in self.factors(account_id) if c.kind == "sms" and c.phone]

    # --- passkeys ---------------------------------------------------------------------------------
    def add_webauthn(
        self, account_id: str, credential_id: bytes, public_key: bytes, sign_count: int, actor: str
    ) -> None:
        with self.db.session() as session:
            session.add(
                MfaCredential(
                    account_id=account_id,
                    kind="webauthn",
                    label="Passkey",
                    webauthn_id=credential_id.hex(),
                    public_key=public_key.hex(),
                    sign_count=sign_count,
                )
            )
            record(session, "mfa.enrolled", actor, account_id, {"kind": "webauthn"})

    def webauthn_credentials(self, account_id: str) -> list[MfaCredential]:
        return [c for c in self.factors(account_id) if c.kind == "webauthn"]

    def record_webauthn_use(self, credential_id: str, sign_count: int) -> None:
        with self.db.session() as session:
            session.execute(
                update(MfaCredential)
                .where(MfaCredential.id == credential_id)
                .values(sign_count=sign_count, last_used_at=utcnow())
            )

    # --- recovery codes ---------------------------------------------------------------------------
    @staticmethod
    def _recovery_hash(account_id: str, code: str) -> str:
        # The codes carry 50 random bits each and are single use: a keyed fast hash is enough.
        normalised = code.replace("-", "").replace(" ", "").lower()
        return hashlib.sha256(f"{account_id}:{normalised}".encode()).hexdigest()

    def new_recovery_codes(self, account_id: str, actor: str) -> list[str]:
        codes = [
            "-".join("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(5)) for _ in range(2))
            for _ in range(RECOVERY_CODES)
        ]
        with self.db.session() as session:
            session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
            session.add_all(
                RecoveryCode(account_id=account_id, code_hash=self._recovery_hash(account_id, c)) for c in codes
            )
            record(session, "mfa.recovery_codes_issued", actor, account_id, {})
        return codes

    def use_recovery_code(self, account_id: str, code: str) -> bool:
        if not 8 <= len(code) <= 20:
            return False
        digest = self._recovery_hash(account_id, code)
        with self.db.session() as session:
            result = session.execute(
                update(RecoveryCode)
                .where(
                    RecoveryCode.account_id == account_id,
                    RecoveryCode.code_hash == digest,
                    RecoveryCode.used_at.is_(None),
                )
                .values(used_at=utcnow())
            )
            if result.rowcount == 1:
                record(session, "mfa.recovery_code_used", account_id, account_id, {})
                return True
        return False

    # --- management ---------------------------------------------------------------------------
    def remove(self, account_id: str, credential_id: str, *, required: bool, actor: str) -> None:
        with self.db.session() as session:
            credential = session.get(MfaCredential, credential_id)
            if credential is None or credential.account_id != account_id:
                raise MfaError("unknown_factor")
            count = session.execute(
                select(func.count()).select_from(MfaCredential).where(MfaCredential.account_id == account_id)
            ).scalar_one()
            account = session.get(Account, account_id)
            if required and count == 1 and not account.mfa_upstream:
                raise MfaError("last_factor")
            session.delete(credential)
            record(session, "mfa.removed", actor, account_id, {"kind": credential.kind})

    def reset(self, account_id: str, actor: str) -> None:
        """Helpdesk: remove every factor and recovery code; the user enrols again at the next login."""
        with self.db.session() as session:
            session.execute(delete(MfaCredential).where(MfaCredential.account_id == account_id))
            session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
            session.execute(update(Account).where(Account.id == account_id).values(mfa_upstream=False))
            record(session, "mfa.reset", actor, account_id, {})

    # --- throttling ---------------------------------------------------------------------------
    def note_failure(self, account_id: str) -> int:
        return self.ephemeral.incr(f"mfafail:{account_id}", 3600)

    def account_throttled(self, account_id: str) -> bool:
        count = self.ephemeral.get(f"mfafail:{account_id}")
        return count is not None and int(count) >= self.settings.max_failures_per_account_hour

    # --- policy state -----------------------------------------------------------------------------
    def declare_spid_waiver(self, account_id: str, reason: str, actor: str) -> dt.datetime:
        until = now() + dt.timedelta(days=self.settings.spid_waiver_days)
        with self.db.session() as session:
            session.execute(
                update(Account)
                .where(Account.id == account_id)
                .values(spid_waiver_reason=reason, spid_waiver_at=utcnow(), spid_waiver_until=until)
            )
            record(
                session, "mfa.spid_waiver_declared", actor, account_id, {"reason": reason, "until": until.isoformat()}
            )
        return until

    def set_upstream_mfa(self, account_id: str, enabled: bool, actor: str) -> None:
        with self.db.session() as session:
            session.execute(update(Account).where(Account.id == account_id).values(mfa_upstream=enabled))
            record(session, "mfa.upstream_" + ("enabled" if enabled else "disabled"), actor, account_id, {})

    def deactivate(self, account_id: str, actor: str) -> dt.datetime:
        until = now() + dt.timedelta(hours=self.settings.deactivation_hours)
        with self.db.session() as session:
            session.execute(update(Account).where(Account.id == account_id).values(mfa_deactivated_until=until))
            record(session, "mfa.deactivated", actor, account_id, {"until": until.isoformat()})
        return until
