"""The throw-away demo instance behind `make demo`: embedded stores, fresh keys, demo accounts."""

from __future__ import annotations

import shutil
from pathlib import Path

from idp.accounts.service import NewAccount
from idp.settings import Settings, load_settings

DEMO_ACCOUNTS = (
    (
        NewAccount(
            username="mario.rossi",
            given_name="Mario",
            family_name="Rossi",
            email="mario.rossi@studenti.uni.example.it",
            personal_email="mario.rossi@example.org",
            population="student",
            student_id="20012345",
            citizenship="IT",
            fiscal_code="RSSMRA85T10H501O",
        ),
        "Studente-Demo-2026",
    ),
    (
        NewAccount(
            username="anna.bianchi",
            given_name="Anna",
            family_name="Bianchi",
            email="anna.bianchi@uni.example.it",
            personal_email="anna.bianchi@example.org",
            population="staff",
        ),
        "Docente-Demo-2026",
    ),
    (
        NewAccount(
            username="john.smith",
            given_name="John",
            family_name="Smith",
            email="john.smith@ospiti.uni.example.it",
            personal_email="john.smith@example.net",
            population="guest",
            citizenship="GB",
        ),
        "Guest-Demo-2026",
    ),
)


def prepare_demo(home: Path, issuer: str) -> tuple[Settings, list[str]]:
    from idp.app import build_services
    from idp.cli import initialise

    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    settings = load_settings(home, environ={"VARCO_ISSUER": issuer})
    initialise(settings)
    # The demo serves on its own issuer and has the mock SPID/CIE/eIDAS identity providers.
    config = settings.config_file.read_text(encoding="utf-8")
    config = config.replace('issuer = "http://127.0.0.1:8080"', f'issuer = "{issuer}"')
    config = config.replace("mock_brokers = []", 'mock_brokers = ["spid", "cie", "eidas"]')
    settings.config_file.write_text(config, encoding="utf-8")
    settings = load_settings(home, environ={})
    services = build_services(settings)
    lines = ["", "Demo accounts (log in with the username, person code, e-mail or student ID):"]
    for new, password in DEMO_ACCOUNTS:
        account = services.accounts.create(new, password, actor="demo")
        lines.append(
            f"  {account.population:8} {account.username:14} password {password:20} person code {account.person_code}"
        )
    temp_account = services.accounts.create(
        NewAccount(
            username="giulia.verdi",
            given_name="Giulia",
            family_name="Verdi",
            email="giulia.verdi@studenti.uni.example.it",
            population="student",
            student_id="20054321",
        ),
        actor="demo",
    )
    temporary = services.accounts.issue_temporary_password(temp_account.username, actor="demo")
    lines.append(
        f"  {'student':8} {'giulia.verdi':14} password {temporary:20} (temporary: must be changed at first login)"
    )
    services.db.dispose()
    return settings, lines
