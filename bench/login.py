"""Password logins per second through the real HTTP stack, against raw argon2id hashes per second.

Varco runs under gunicorn with one sync worker pinned to CPU 0; the client runs pinned to CPU 1.
A login is what a browser does: GET /login (form, flow and token) then POST the credentials
(argon2id verification, SSO session, redirect). In the same run, argon2id verifications at the
same parameters are timed on CPU 0. The ratio says how much of a login is the hash itself.

    python bench/login.py [--seconds 10] [--clients 2] [--embedded]

Default stores: PostgreSQL (a private schema, dropped afterwards) and Redis, as in production;
--embedded uses SQLite and the SQL-backed ephemeral store.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.instance import create_instance, drop_schema, free_port, run_load  # noqa: E402

TOKEN = re.compile(rb'name="csrf_token" value="([^"]+)"')
ACTION = re.compile(rb'<form method="post" action="([^"]+)"')
PASSWORD = "Quiet-Harbour-2026"


def prepare(home: Path, embedded: bool) -> tuple[dict[str, str], str | None]:
    from idp.accounts.service import NewAccount

    env, schema, services = create_instance(home, embedded)
    for i in range(8):
        services.accounts.create(
            NewAccount(f"bench.user{i}", "Load", f"Tester{i}", f"bench.user{i}@uni.example.it"), PASSWORD
        )
    services.db.dispose()
    return env, schema


def one_login(port: int, user: str) -> None:
    """One browser login over one keep-alive connection, as browsers do: GET the form, POST it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    response = conn.getresponse()
    body = response.read()
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    token = TOKEN.search(body).group(1).decode()
    action = ACTION.search(body).group(1).decode().replace("&amp;", "&")
    form = urlencode({"csrf_token": token, "username": user, "password": PASSWORD})
    conn.request(
        "POST", action, body=form, headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 303 or response.getheader("Location") != "/account":
        raise RuntimeError(f"login failed: {response.status} {response.getheader('Location')}")


def run_clients(port: int, seconds: float, clients: int) -> tuple[int, float]:
    return run_load(seconds, clients, lambda index: lambda: one_login(port, f"bench.user{index % 8}"))


def argon2_rate(seconds: float, threads: int) -> float:
    """argon2id verifications per second on CPU 0, with Varco's configured parameters, from as many
    threads as the gunicorn worker has (so both sides compete for CPU 0 alike on a busy machine)."""
    code = f"""
import os, threading, time
os.sched_setaffinity(0, {{0}})
from idp.settings import load_settings
from idp.accounts.passwords import Passwords
p = Passwords(load_settings(environ={{}}).passwords)
h = p.hash({PASSWORD!r})
counts = [0] * {threads}
stop = time.perf_counter() + {seconds}
def work(i):
    while time.perf_counter() < stop:
        p.verify(h, {PASSWORD!r})
        counts[i] += 1
start = time.perf_counter()
ts = [threading.Thread(target=work, args=(i,)) for i in range({threads})]
[t.start() for t in ts]
[t.join() for t in ts]
print(sum(counts) / (time.perf_counter() - start))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="total login time, split over the rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    parser.add_argument("--threads", type=int, default=2, help="threads of the one gunicorn worker (gthread)")
    parser.add_argument("--embedded", action="store_true", help="SQLite + SQL-backed ephemeral store")
    args = parser.parse_args()
    cpus = os.sched_getaffinity(0)
    if not {0, 1} <= cpus:
        sys.exit("bench/login.py needs CPUs 0 and 1 (server on 0, client on 1)")

    home = Path(tempfile.mkdtemp(prefix="varco-bench-"))
    env, schema = prepare(home, args.embedded)
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            str(gunicorn),
            "--workers",
            "1",
            "--worker-class",
            args.worker_class,
            "--threads",
            str(args.threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "idp.app:create_app()",
        ],
        env={**os.environ, **env},
        cwd=ROOT,
    )
    try:
        for _ in range(200):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("gunicorn did not become ready")
        os.sched_setaffinity(0, {1})
        run_clients(port, 1.0, args.clients)  # warm-up
        rounds = []
        # Logins and raw hashes alternate, so a change in machine load touches both figures alike.
        for _ in range(args.rounds):
            logins, elapsed = run_clients(port, args.seconds / args.rounds, args.clients)
            threads = args.threads if args.worker_class == "gthread" else 1
            slice_seconds = min(args.seconds / args.rounds, 3.0)
            rounds.append(
                (logins / elapsed, argon2_rate(slice_seconds, 1), argon2_rate(slice_seconds, threads), logins)
            )
    finally:
        server.terminate()
        server.wait(10)
        os.sched_setaffinity(0, cpus)
        if schema:
            drop_schema(schema)
        shutil.rmtree(home, ignore_errors=True)
    stores = "SQLite + SQL ephemeral" if args.embedded else "PostgreSQL + Redis"
    worker = f"{args.worker_class}, {args.threads} threads" if args.worker_class == "gthread" else "sync"
    print(f"stores: {stores}; gunicorn 1 worker ({worker}) on CPU 0; {args.clients} client threads on CPU 1")
    for index, (logins_per_s, hashes, hashes_threaded, count) in enumerate(rounds, 1):
        print(
            f"round {index}: {logins_per_s:7.1f} logins/s ({count} logins)   {hashes:7.1f} argon2id/s on one thread "
            f"({hashes_threaded:.1f}/s from {threads} threads)   ratio {logins_per_s / hashes:.3f}"
        )
    logins_per_s = statistics.median(r[0] for r in rounds)
    hashes = statistics.median(r[1] for r in rounds)
    hashes_threaded = statistics.median(r[2] for r in rounds)
    ratio = statistics.median(r[0] / r[1] for r in rounds)
    print(f"password logins/s (GET /login + POST, HTTP), median: {logins_per_s:8.1f}")
    print(f"raw argon2id verifications/s (same params), one thread, median: {hashes:8.1f}")
    print(f"raw argon2id verifications/s from {threads} threads on the same core, median: {hashes_threaded:8.1f}")
    # The core's best hash rate (one thread) is the baseline: threads on one core only add cache misses.
    print(f"ratio logins/hashes (one-thread baseline), median of rounds: {ratio:.3f}  (target >= 0.85)")
    print(f"ratio against the {threads}-thread hash rate: {logins_per_s / hashes_threaded:.3f}")


if __name__ == "__main__":
    main()
