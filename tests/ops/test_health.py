"""/healthz and /readyz with both stores up."""


def test_healthz_answers(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_both_stores(app, backend):
    body = app.test_client().get("/readyz").get_json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "ephemeral": "ok"}
    assert body["ephemeral_backend"] == ("redis" if backend == "pg+redis" else "sql")


def test_pages_carry_security_headers(browser):
    response = browser.client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
