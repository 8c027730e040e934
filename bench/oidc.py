"""OIDC throughput on one core: client_credentials grants/s, refresh grants/s and full code flows/s
for a logged-in person, and node's oidc-provider doing client_credentials on the same machine.

Varco runs under gunicorn with one worker pinned to CPU 0 (Redis as the ephemeral store,
PostgreSQL in a private schema, as in production); oidc-provider runs as one node process pinned
to CPU 0 too (installed from npm into a temporary folder). The same load generator, pinned to
CPU 1, drives both over keep-alive HTTP/1.1 connections, in alternating one-second slices so
both see the same machine noise.

    python bench/oidc.py [--seconds 10] [--clients 4] [--embedded]

A code flow is what an RP does for a person who already has an SSO session: GET /oidc/authorize
(302 with the code) then POST /oidc/token (code + PKCE verifier for tokens and an ID token).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.instance import create_instance, drop_schema, free_port  # noqa: E402
from bench.instance import run_load as shared_run_load  # noqa: E402

PASSWORD = "Quiet-Harbour-2026"
SECRET = "bench-secret-" + "x" * 40
REDIRECT = "https://rp.bench.example/cb"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"bench:{SECRET}".encode()).decode()}

OIDC_PROVIDER_JS = """
const { default: Provider } = await import('oidc-provider')
const [port] = process.argv.slice(2)
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{ client_id: 'bench', client_secret: process.env.BENCH_SECRET, grant_types: ['client_credentials'],
              redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic' }],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  scopes: ['api'],
})
provider.listen(Number(port), '127.0.0.1', () => console.log('ready'))
"""


# --- Varco -------------------------------------------------------------------------------------
def prepare(home: Path, embedded: bool) -> tuple[dict[str, str], str | None]:
    from idp.accounts.service import NewAccount
    from idp.oidc.clients import ClientRegistry, NewClient

    env, schema, services = create_instance(home, embedded)
    services.accounts.create(NewAccount("bench.user", "Load", "Tester", "bench.user@uni.example.it"), PASSWORD)
    ClientRegistry(services.db).add(
        NewClient(
            client_id="bench",
            name="Bench",
            secret=SECRET,
            redirect_uris=(REDIRECT,),
            grant_types=("authorization_code", "refresh_token", "client_credentials"),
            scopes=("openid", "profile", "email", "offline_access"),
            first_party=True,
        )
    )
    services.db.dispose()
    return env, schema


def start_varco(
    env: dict[str, str], port: int, threads: int, worker_class: str, app: str = "idp.app:create_app()"
) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [
        "taskset",
        "-c",
        "0",
        str(gunicorn),
        "--workers",
        "1",
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--keep-alive",
        "30",
        app,
    ]
    server = subprocess.Popen(command, env={**os.environ, **env, "VARCO_ISSUER": f"http://127.0.0.1:{port}"}, cwd=ROOT)
    wait_ready(port, "/readyz")
    return server


def wait_ready(port: int, path: str) -> None:
    for _ in range(400):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not become ready")


# --- oidc-provider -----------------------------------------------------------------------------
def start_oidc_provider(port: int, workdir: Path) -> tuple[subprocess.Popen, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "package.json").write_text('{"private": true, "type": "module"}', encoding="utf-8")
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", "oidc-provider@^9"],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    package = workdir / "node_modules" / "oidc-provider" / "package.json"
    version = json.loads(package.read_text(encoding="utf-8"))["version"]
    (workdir / "server.mjs").write_text(OIDC_PROVIDER_JS, encoding="utf-8")
    server = subprocess.Popen(
        ["taskset", "-c", "0", "node", "server.mjs", str(port)],
        cwd=workdir,
        env={**os.environ, "BENCH_SECRET": SECRET, "NODE_ENV": "production"},
        stdout=subprocess.DEVNULL,
    )
    wait_ready(port, "/.well-known/openid-configuration")
    return server, version


# --- load --------------------------------------------------------------------------------------
class Connection:
    """One keep-alive connection, reopened when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
                return response, data
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def run_load(seconds: float, clients: int, make_worker: Callable[[int], Callable[[], None]]) -> float:
    done, elapsed = shared_run_load(seconds, clients, make_worker)
    return done / elapsed


def floor_worker(port: int) -> Callable[[int], Callable[[], None]]:
    """GET /healthz: what gunicorn, Flask and Varco's shared request hooks cost with no OIDC work."""

    def make(_: int) -> Callable[[], None]:
        conn = Connection(port)
        return lambda: conn.request("GET", "/healthz") and None

    return make


def client_credentials_worker(port: int, path: str, scope: str) -> Callable[[int], Callable[[], None]]:
    def make(_: int) -> Callable[[], None]:
        conn = Connection(port)
        body = urlencode({"grant_type": "client_credentials", "scope": scope})

        def once() -> None:
            response, data = conn.request("POST", path, body, {**FORM, **BASIC})
            if response.status != 200:
                raise RuntimeError(f"client_credentials: {response.status} {data[:200]!r}")

        return once

    return make


def sso_cookie(port: int) -> str:
    import re

    conn = Connection(port)
    response, body = conn.request("GET", "/login")
    cookies = [response.getheader("Set-Cookie").split(";", 1)[0]]
    if response.status in (302, 303):
        response, body = conn.request("GET", response.getheader("Location"), headers={"Cookie": cookies[0]})
    token = re.search(rb'name="csrf_token" value="([^"]+)"', body).group(1).decode()
    action = re.search(rb'<form method="post" action="([^"]+)"', body).group(1).decode().replace("&amp;", "&")
    form = urlencode({"csrf_token": token, "username": "bench.user", "password": PASSWORD})
    response, _ = conn.request("POST", action, form, {**FORM, "Cookie": "; ".join(cookies)})
    cookies.append(response.getheader("Set-Cookie").split(";", 1)[0])
    return "; ".join(cookies)


def code_flow(conn: Connection, cookie: str) -> dict:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "bench",
            "redirect_uri": REDIRECT,
            "scope": "openid profile email offline_access",
            "state": "s",
            "nonce": "n",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    response, data = conn.request("GET", "/oidc/authorize?" + query, headers={"Cookie": cookie})
    location = response.getheader("Location") or ""
    if response.status != 302 or not location.startswith(REDIRECT):
        raise RuntimeError(f"authorize: {response.status} {location} {data[:200]!r}")
    code = parse_qs(urlsplit(location).query)["code"][0]
    body = urlencode(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    )
    response, data = conn.request("POST", "/oidc/token", body, {**FORM, **BASIC})
    if response.status != 200:
        raise RuntimeError(f"token: {response.status} {data[:200]!r}")
    return json.loads(data)


def code_flow_worker(port: int, cookie: str) -> Callable[[int], Callable[[], None]]:
    def make(_: int) -> Callable[[], None]:
        conn = Connection(port)
        return lambda: code_flow(conn, cookie) and None

    return make


def refresh_worker(port: int, cookie: str) -> Callable[[int], Callable[[], None]]:
    def make(_: int) -> Callable[[], None]:
        conn = Connection(port)
        state = {"refresh": code_flow(conn, cookie)["refresh_token"]}

        def once() -> None:
            body = urlencode({"grant_type": "refresh_token", "refresh_token": state["refresh"]})
            response, data = conn.request("POST", "/oidc/token", body, {**FORM, **BASIC})
            if response.status != 200:
                raise RuntimeError(f"refresh: {response.status} {data[:200]!r}")
            state["refresh"] = json.loads(data)["refresh_token"]

        return once

    return make


def alternate(seconds: float, clients: int, workers: dict[str, Callable[[int], Callable[[], None]]]) -> dict:
    """Interleave one-second slices of each workload, so every server sees the same machine noise."""
    done = dict.fromkeys(workers, 0.0)
    for _ in range(max(1, int(seconds))):
        for name, worker in workers.items():
            done[name] += run_load(1.0, clients, worker)
    return {name: total / max(1, int(seconds)) for name, total in done.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="threads of the one gunicorn worker (gthread)")
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    parser.add_argument("--embedded", action="store_true", help="SQLite + SQL-backed ephemeral store")
    args = parser.parse_args()
    if not {0, 1} <= os.sched_getaffinity(0):
        sys.exit("bench/oidc.py needs CPUs 0 and 1 (servers on 0, load on 1)")

    work = Path(tempfile.mkdtemp(prefix="varco-bench-oidc-"))
    env, schema = prepare(work / "home", args.embedded)
    results: dict[str, float] = {}
    servers: list[subprocess.Popen] = []
    try:
        port, node_port, floor_port = free_port(), free_port(), free_port()
        servers.append(start_varco(env, port, args.threads, args.worker_class))
        servers.append(start_varco(env, floor_port, args.threads, args.worker_class, "bench.floor_app:app"))
        node, version = start_oidc_provider(node_port, work / "oidc-provider")
        servers.append(node)
        os.sched_setaffinity(0, {1})
        cookie = sso_cookie(port)
        contest = {
            "varco client_credentials": client_credentials_worker(port, "/oidc/token", "profile"),
            f"oidc-provider {version} client_credentials": client_credentials_worker(node_port, "/token", "api"),
            "gunicorn + zero-work WSGI app (stack ceiling)": client_credentials_worker(floor_port, "/token", "api"),
        }
        alternate(2, args.clients, contest)  # warm-up (JIT, pools, caches)
        results.update(alternate(args.seconds, args.clients, contest))
        results["varco refresh"] = run_load(args.seconds, args.clients, refresh_worker(port, cookie))
        results["varco code flow"] = run_load(args.seconds, args.clients, code_flow_worker(port, cookie))
        results["varco GET /healthz (request floor)"] = run_load(args.seconds, args.clients, floor_worker(port))
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        if schema:
            drop_schema(schema)
    stores = "SQLite + SQL ephemeral" if args.embedded else "PostgreSQL + Redis"
    print(
        f"servers on CPU 0 (one gunicorn worker / one node process), load on CPU 1, {args.clients} client "
        f"threads, {args.seconds:.0f} s per measurement, Varco on {stores}"
    )
    for name, rate in results.items():
        print(f"  {name:<45} {rate:8.0f} /s")
    ours = results["varco client_credentials"]
    theirs = next(v for k, v in results.items() if k.startswith("oidc-provider"))
    floor = results["gunicorn + zero-work WSGI app (stack ceiling)"]
    print(f"  client_credentials ratio Varco / oidc-provider: {ours / theirs:.2f}x (target >= 0.5x)")
    print(f"  ceiling of the HTTP stack alone / oidc-provider: {floor / theirs:.2f}x")


if __name__ == "__main__":
    main()
