"""Outgoing mail over SMTP (smtplib); with no SMTP URL configured, mail is written to the log."""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from idp.settings import SmtpSettings

log = logging.getLogger("varco.mail")


class MailError(Exception):
    """The SMTP server refused or did not answer."""


class Mailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.sent_to_log: list[EmailMessage] = []

    def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        if not self.settings.url:
            log.info("mail (no SMTP configured) to=%s subject=%s\n%s", to, subject, body)
            self.sent_to_log.append(message)
            return
        url = urlsplit(self.settings.url)
        try:
            if url.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    url.hostname, url.port or 465, timeout=10, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(url.hostname, url.port or 25, timeout=10)
            with client:
                if url.username:
                    client.login(unquote(url.username), unquote(url.password or ""))
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"SMTP {url.hostname}:{url.port}: {exc}") from exc
