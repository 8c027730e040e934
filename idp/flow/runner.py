"""The ordered steps of a login, and the first one still needed."""

from __future__ import annotations

from idp.flow.mfa_steps import MFA_STEPS
from idp.flow.steps import ChangePasswordStep, FlowContext, PasswordStep, Step

STEPS: tuple[Step, ...] = (PasswordStep(), ChangePasswordStep(), *MFA_STEPS)


def current_step(ctx: FlowContext) -> Step | None:
    return next((step for step in STEPS if step.needed(ctx)), None)
