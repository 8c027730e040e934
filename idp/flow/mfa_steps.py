"""Second-factor steps of the login flow (seed 002 and the flowchart of seed 003).

Order after the password: the Italian-citizen rule, "2FA via SPID/CIE/eIDAS", a service that needs
2FA while the account's 2FA is deactivated, enrolment (from the second login), the second factor.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from idp.accounts.identifiers import InvalidInput, check_text
from idp.flow.steps import FlowContext, Step, StepAbort, StepErrors, StepRedirect
from idp.mfa import policy, totp
from idp.mfa.service import MfaError
from idp.mfa.sms import normalise_phone

MAX_REASON = 500


def upstream_strong(ctx: FlowContext) -> bool:
    return bool(policy.UPSTREAM_STRONG & set(ctx.state.amr))


def mfa_demanded(ctx: FlowContext) -> bool:
    """The account's own rule or the relying service asks for a second factor in this login."""
    account = ctx.account
    mfa = ctx.services.settings.mfa
    return policy.account_requires_mfa(account, mfa) or policy.request_requires_mfa(ctx.state.request)


def second_factor_fresh(ctx: FlowContext) -> bool:
    mfa_at = ctx.state.data.get("mfa_at")
    return mfa_at is not None and time.time() - mfa_at <= ctx.services.settings.mfa.freshness_hours * 3600


def grant_second_factor(ctx: FlowContext, method: str) -> None:
    if method not in ctx.state.amr:
        ctx.state.amr.append(method)
    ctx.state.data["mfa_at"] = int(time.time())


def strong_brokers(ctx: FlowContext) -> list[Any]:
    return list(ctx.services.strong_brokers)


class ItalianCitizenStep(Step):
    """Seed 003, citizen = yes: use SPID/CIE, or declare why not and use the local OTP for a while."""

    name = "spid_notice"
    template = "flow/spid_notice.html"

    def needed(self, ctx: FlowContext) -> bool:
        account = ctx.account
        if account is None or upstream_strong(ctx) or account.mfa_upstream:
            return False
        return policy.spid_rule_applies(account) and mfa_demanded(ctx)

    def context(self, ctx: FlowContext) -> dict[str, Any]:
        return {"brokers": strong_brokers(ctx), "reason": ctx.state.data.get("reason", "")}

    def submit(self, ctx: FlowContext, form: Mapping[str, str]) -> StepErrors | StepRedirect | None:
        for broker in strong_brokers(ctx):
            if form.get("broker") == broker.name:
                # Seed 003, citizen with SPID/CIE: "activate 2FA with SPID/CIE" by logging in with it.
                ctx.state.data["enable_upstream"] = True
                return StepRedirect(broker.login_url(ctx.state.id))
        reason = form.get("reason", "")
        try:
            check_text("reason", reason, MAX_REASON)
        except InvalidInput as exc:
            ctx.state.data["reason"] = reason[:MAX_REASON]
            return StepErrors({"reason": exc.message})
        ctx.services.mfa.declare_spid_waiver(ctx.account.id, reason.strip(), actor=ctx.account.username)
        ctx.state.data.pop("reason", None)
        ctx.reload()
        return None


def second_factor_known(ctx: FlowContext) -> bool:
    return ctx.services.mfa.has_factor(ctx.account.id)


class UpstreamStrongStep(Step):
    """ "2FA via SPID/CIE/eIDAS": a local password is not enough; an upstream strong login that resolves
    to the same person is (seed 002)."""

    name = "upstream_2fa"
    template = "flow/upstream_required.html"

    def needed(self, ctx: FlowContext) -> bool:
        account = ctx.account
        if account is None or upstream_strong(ctx):
            return False
        return account.mfa_upstream or ctx.state.data.get("enable_upstream", False)

    def context(self, ctx: FlowContext) -> dict[str, Any]:
        return {"brokers": strong_brokers(ctx), "enabling": ctx.state.data.get("enable_upstream", False)}

    def submit(self, ctx: FlowContext, form: Mapping[str, str]) -> StepErrors | StepRedirect | None:
        if form.get("action") == "cancel" and ctx.state.data.get("enable_upstream"):
            ctx.state.data.pop("enable_upstream")
            return None
        for broker in strong_brokers(ctx):
            if form.get("broker") == broker.name:
                return StepRedirect(broker.login_url(ctx.state.id))
        return StepErrors({"form": "unknown_broker"})


class MfaBlockedStep(Step):
    """The relying service needs 2FA but the account's 2FA is deactivated: refuse, clearly."""

    name = "mfa_blocked"
    template = "flow/mfa_blocked.html"

    def needed(self, ctx: FlowContext) -> bool:
        account = ctx.account
        return (
            account is not None
            and policy.deactivated(account)
            and policy.request_requires_mfa(ctx.state.request)
            and not upstream_strong(ctx)
        )

    def context(self, ctx: FlowContext) -> dict[str, Any]:
        return {"until": policy.aware(ctx.account.mfa_deactivated_until)}

    def submit(self, ctx: FlowContext, form: Mapping[str, str]) -> StepErrors | None:
        return StepErrors({"form": "mfa_deactivated"}, 403)


class MfaEnrolmentStep(Step):
    """Enrol a second factor: demanded from the second login, offered (may be skipped) at the first."""

    name = "mfa_enrol"
    template = "flow/mfa_enrol.html"
    TEMPLATES = {
        "choose": "flow/mfa_enrol.html",
        "totp": "flow/totp_enrol.html",
        "sms_phone": "flow/sms_enrol.html",
        "sms_code": "flow/sms_enrol.html",
        "webauthn": "flow/webauthn_enrol.html",
        "recovery": "flow/recovery_codes.html",
    }

    def needed(self, ctx: FlowContext) -> bool:
        account = ctx.account
        if account is None or upstream_strong(ctx) or account.mfa_upstream:
            return False
        data = ctx.state.data
        if data.get("enrol_mode") == "recovery":
            return True
        if ctx.state.request.protocol_state.get("enrol") and not data.get("enrolled"):
            # Adding a factor from /account/security: after the existing factor, if there is one.
            return second_factor_fresh(ctx) or not second_factor_known(ctx)
        if second_factor_known(ctx):
            return False
        if mfa_demanded(ctx):
            return True
        mfa = ctx.services.settings.mfa
        return policy.first_login_notice_due(account, mfa) and not ctx.state.data.get("notice_dismissed")

    def mode(self, ctx: FlowContext) -> str:
        return ctx.state.data.get("enrol_mode", "choose")

    def template_for(self, ctx: FlowContext) -> str:
        return self.TEMPLATES[self.mode(ctx)]

    def context(self, ctx: FlowContext) -> dict[str, Any]:
        account = ctx.account
        mfa = ctx.services.settings.mfa
        values: dict[str, Any] = {
            "mode": self.mode(ctx),
            "optional": not mfa_demanded(ctx),
            "brokers": strong_brokers(ctx),
            "waiver": policy.aware(account.spid_waiver_until) if account.citizenship == "IT" else None,
        }
        if values["mode"] == "totp":
            secret = ctx.state.data["totp_secret"]
            uri = totp.provisioning_uri(secret, account.username, mfa.totp_issuer)
            values.update(secret=secret, qr_svg=totp.qr_svg(uri))
        if values["mode"] == "sms_code":
            values["phone"] = ctx.state.data.get("phone")
        if values["mode"] == "recovery":
            values["codes"] = ctx.state.data.get("recovery_codes", [])
        if values["mode"] == "webauthn":
            from idp.flow import passkeys

            values["options_json"] = passkeys.begin_registration(ctx)
        return values

    def submit(self, ctx: FlowContext, form: Mapping[str, str]) -> StepErrors | None:
        action = form.get("action", "")
        data = ctx.state.data
        mode = self.mode(ctx)
        if action == "later" and not mfa_demanded(ctx) and not ctx.state.request.protocol_state.get("enrol"):
            data["notice_dismissed"] = True
            return None
        if action == "back":
            data["enrol_mode"] = "choose"
            return None
        if mode == "choose":
            return self._choose(ctx, action)
        if mode == "totp":
            return self._confirm_totp(ctx, form)
        if mode in ("sms_phone", "sms_code"):
            return self._sms(ctx, mode, action, form)
        if mode == "webauthn":
            from idp.flow import passkeys

            error = passkeys.finish_registration(ctx, form.get("webauthn_response", ""))
            return StepErrors({"form": error}) if error else self._enrolled(ctx, "hwk")
        if mode == "recovery":
            data.pop("recovery_codes", None)
            data.pop("enrol_mode", None)
            return None
        return StepErrors({"form": "unknown_action"})

    def _choose(self, ctx: FlowContext, action: str) -> StepErrors | None:
        data = ctx.state.data
        if action == "totp":
            data["totp_secret"] = totp.new_secret()
            data["enrol_mode"] = "totp"
        elif action == "sms":
            data["enrol_mode"] = "sms_phone"
        elif action == "webauthn":
            data["enrol_mode"] = "webauthn"
        elif action == "upstream" and strong_brokers(ctx):
            data["enable_upstream"] = True
        else:
            return StepErrors({"form": "unknown_action"})
        return None

    def _confirm_totp(self, ctx: FlowContext, form: Mapping[str, str]) -> StepErrors | None:
        code = form.get("otp", "")
        if not totp.CODE.match(totp.clean_code(code)[:20]):
            return StepErrors({"otp": "code_format"})
        try:
            ctx.services.mfa.confirm_totp(
                ctx.account.id, ctx.state.data["totp_secret"], code, actor=ctx.account.username
            )
        except MfaError as exc:
            return count_wrong_code(ctx, exc.code)
        ctx.state.data.pop("totp_secret", None)
        return self._enrolled(ctx, "otp")

    def _sms(self, ctx: FlowContext, mode: str, action: str, form: Mapping[str, str]) -> StepErrors | None:
        svc = ctx.services
        if mode == "sms_phone" or action == "resend":
            raw = form.get("phone", "") if mode == "sms_phone" else ctx.state.data.get("phone", "")
            try:
                phone = normalise_phone(check_text("phone", raw, 32))
            except InvalidInput as exc:
                return StepErrors({"phone": exc.message})
            except ValueError:
                return StepErrors({"phone": "phone_format"})
            try:
                svc.mfa.send_sms_code(ctx.account.id, phone, f"enrol:{ctx.state.id}")
            except MfaError as exc:
                return StepErrors({"form": exc.code}, 429 if exc.code == "sms_resend_too_soon" else 503)
            ctx.state.data.update(enrol_mode="sms_code", phone=phone)
            return None
        code = form.get("otp", "")
        if not totp.CODE.match(totp.clean_code(code)[:20]):
            return StepErrors({"otp": "code_format"})
        phone = svc.mfa.check_sms_code(ctx.account.id, f"enrol:{ctx.state.id}", code)
        if phone is None:
            return count_wrong_code(ctx, "wrong_code")
        svc.mfa.add_sms(ctx.account.id, phone, actor=ctx.account.username)
        return self._enrolled(ctx, "sms")

    def _enrolled(self, ctx: FlowContext, method: str) -> None:
        """A confirmed enrolment proves possession of the factor: it counts as this login's second factor."""
        grant_second_factor(ctx, method)
        ctx.state.data["enrolled"] = True
        ctx.state.data["recovery_codes"] = ctx.services.mfa.new_recovery_codes(ctx.account.id, ctx.account.username)
        ctx.state.data["enrol_mode"] = "recovery"
        return None


class SecondFactorStep(Step):
    """Ask for the second factor: TOTP, SMS code, recovery code or passkey (never the password again)."""

    name = "second_factor"
    template = "flow/second_factor.html"

    def needed(self, ctx: FlowContext) -> bool:
        account = ctx.account
        if account is None or upstream_strong(ctx) or second_factor_fresh(ctx):
            return False
        return mfa_demanded(ctx) and second_factor_known(ctx)

    def context(self, ctx: FlowContext) -> dict[str, Any]:
        factors = ctx.services.mfa.factors(ctx.account.id)
        kinds = {f.kind for f in factors}
        values: dict[str, Any] = {
            "has_totp": "totp" in kinds,
            "has_sms": "sms" in kinds,
            "has_webauthn": "webauthn" in kinds,
            "sms_sent": ctx.state.data.get("sms_sent", False),
            "step_up": ctx.state.data.get("session_id") is not None,
        }
        if values["has_webauthn"]:
            from idp.flow import passkeys

            values["options_json"] = passkeys.begin_authentication(ctx)
        return values

    def submit(self, ctx: FlowContext, form: Mapping[str, str]) -> StepErrors | StepAbort | None:
        svc = ctx.services
        account_id = ctx.account.id
        if svc.mfa.account_throttled(account_id):
            return StepErrors({"form": "mfa_throttled"}, 429)
        action = form.get("action", "verify")
        if action == "send_sms":
            phones = svc.mfa.sms_phones(account_id)
            if not phones:
                return StepErrors({"form": "unknown_action"})
            try:
                svc.mfa.send_sms_code(account_id, phones[0], f"login:{ctx.state.id}")
            except MfaError as exc:
                return StepErrors({"form": exc.code}, 429 if exc.code == "sms_resend_too_soon" else 503)
            ctx.state.data["sms_sent"] = True
            return StepErrors({"form": "sms_sent"}, 200)
        if action == "webauthn":
            from idp.flow import passkeys

            error = passkeys.finish_authentication(ctx, form.get("webauthn_response", ""))
            if error:
                return count_wrong_code(ctx, error)
            grant_second_factor(ctx, "hwk")
            return None
        raw = form.get("otp", "")
        code = totp.clean_code(raw)
        if not code:
            return StepErrors({"otp": "required"})
        if len(raw) > 64:
            return count_wrong_code(ctx, "code_format", field="otp")
        method = None
        if totp.CODE.match(code):
            if svc.mfa.verify_totp(account_id, code):
                method = "otp"
            elif ctx.state.data.get("sms_sent") and svc.mfa.check_sms_code(account_id, f"login:{ctx.state.id}", code):
                method = "sms"
        elif svc.mfa.use_recovery_code(account_id, code):
            method = "otp"
        if method is None:
            return count_wrong_code(ctx, "wrong_code" if totp.CODE.match(code) or "-" in code else "code_format", "otp")
        grant_second_factor(ctx, method)
        return None


def count_wrong_code(ctx: FlowContext, code: str, field: str = "otp") -> StepErrors | StepAbort:
    """At most N wrong codes per login flow, and 100 failed attempts per account per hour."""
    svc = ctx.services
    svc.mfa.note_failure(ctx.account.id)
    wrong = ctx.state.data.get("wrong_codes", 0) + 1
    ctx.state.data["wrong_codes"] = wrong
    if wrong >= svc.settings.mfa.max_wrong_codes_per_flow:
        return StepAbort("too_many_codes", 429)
    return StepErrors({field: code}, 401)


MFA_STEPS: tuple[Step, ...] = (
    ItalianCitizenStep(),
    UpstreamStrongStep(),
    MfaBlockedStep(),
    MfaEnrolmentStep(),
    SecondFactorStep(),
)
