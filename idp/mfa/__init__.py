"""Second factors (TOTP, SMS, passkeys, recovery codes), enrolment rules, the Italian-citizen policy,
temporary deactivation."""
