"""Password logins per second through the real HTTP stack, against raw argon2id hashes per second.

Varco runs under gunicorn with one gthread worker (4 threads) pinned to CPU 0; the client runs
pinned to CPU 1. A login is what a browser does: GET /login (form, flow and token) then POST the
credentials (argon2id verification, SSO session, redirect). Between the login slices, argon2id
verifications at the same parameters run on CPU 0 in a process of their own, on one thread (the
core's best rate). The ratio says how much of a login is the hash itself. On a shared host each
round's rates move with the other tenants' load; the run prints, with its ratio, the 95% interval
its own rounds leave around it. Sixteen rounds by default: at eight, that interval was about
±0.04 on a shared 2-core host, too wide to read a target to two decimals from one run.

    python bench/login.py [--rounds 16] [--slice 2] [--clients 4] [--embedded]

Default stores: PostgreSQL (a private schema, dropped afterwards) and Redis, as in production;
--embedded uses SQLite and the SQL-backed ephemeral store. When the PostgreSQL and Redis servers
run on this machine, they are moved to CPU 1 for the run and given back their CPUs afterwards: in
production they are other machines, and the worker's core measures the login alone
(--stores-share-core leaves them where the scheduler puts them).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.instance import create_instance, drop_schema, free_port, run_load, stores_on  # noqa: E402

TOKEN = re.compile(rb'name="csrf_token" value="([^"]+)"')
ACTION = re.compile(rb'<form method="post" action="([^"]+)"')
PASSWORD = "Quiet-Harbour-2026"


# --overhead: argon2id at its cheapest, so a login costs only what surrounds the hash.
CHEAPEST_ARGON2 = {"VARCO_PASSWORDS_ARGON2_MEMORY_KIB": "8", "VARCO_PASSWORDS_ARGON2_TIME_COST": "1"}


def prepare(home: Path, embedded: bool, overhead: bool = False) -> tuple[dict[str, str], str | None]:
    from idp.accounts.service import NewAccount

    env, schema, services = create_instance(home, embedded, CHEAPEST_ARGON2 if overhead else None)
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


HASHER = """
import os, sys, time
os.sched_setaffinity(0, {0})
from idp.settings import load_settings
from idp.accounts.passwords import Passwords
passwords = Passwords(load_settings(environ={}).passwords)
stored = passwords.hash(PASSWORD)
print("ready", flush=True)
for line in sys.stdin:
    stop = time.perf_counter() + float(line)
    count, started = 0, time.perf_counter()
    while time.perf_counter() < stop:
        passwords.verify(stored, PASSWORD)
        count += 1
    print(count, time.perf_counter() - started, flush=True)
"""


class Hasher:
    """A process pinned to CPU 0 that verifies argon2id hashes (Varco's configured parameters,
    one thread: the core's best rate) for as long as it is told, between the login slices."""

    def __init__(self) -> None:
        code = f"PASSWORD = {PASSWORD!r}\n" + HASHER
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("the argon2id timing process did not start")

    def run(self, seconds: float) -> tuple[int, float]:
        self.process.stdin.write(f"{seconds}\n")
        self.process.stdin.flush()
        count, elapsed = self.process.stdout.readline().split()
        return int(count), float(elapsed)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(10)


def start_server(
    env: dict[str, str], port: int, worker_class: str, threads: int, app: str = "idp.app:create_app()"
) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "--workers", "1", "--worker-class", worker_class, "--threads", str(threads)]
    command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning", app]
    # The audit log still gets written for every login, to /dev/null instead of the terminal.
    server = subprocess.Popen(
        ["taskset", "-c", "0", *command], env={**os.environ, **env}, cwd=ROOT, stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.05)
    server.terminate()
    raise SystemExit("gunicorn did not become ready")


def measure(args: argparse.Namespace) -> tuple[list, list, list]:
    """Alternating slices: (logins, seconds, hashes, seconds) per round, and the --overhead and
    --floor slices."""
    cpus = os.sched_getaffinity(0)
    home = Path(tempfile.mkdtemp(prefix="varco-bench-"))
    env, schema = prepare(home, args.embedded)
    server = start_server(env, port := free_port(), args.worker_class, args.threads)
    cheap = None
    if args.overhead:
        cheap_env, cheap_schema = prepare(home / "cheapest", args.embedded, overhead=True)
        cheap = (start_server(cheap_env, cheap_port := free_port(), args.worker_class, args.threads), cheap_schema)
    floor = None
    if args.floor:
        floor_app = "bench.floor_login_app:app"
        floor = start_server(env, floor_port := free_port(), args.worker_class, args.threads, floor_app)
    hasher = Hasher()
    rounds: list[tuple[int, float, int, float]] = []
    around: list[tuple[int, float]] = []
    floors: list[tuple[int, float]] = []
    try:
        os.sched_setaffinity(0, {1})
        run_clients(port, 1.0, args.clients)  # warm-up
        hasher.run(0.5)
        # Short slices of logins and of raw hashes alternate, so a change in machine load (other
        # tenants of the host) touches both figures alike.
        for _ in range(args.rounds):
            logins, login_seconds = run_clients(port, args.slice, args.clients)
            hashes, hash_seconds = hasher.run(args.slice)
            rounds.append((logins, login_seconds, hashes, hash_seconds))
            if cheap:
                around.append(run_clients(cheap_port, args.slice, args.clients))
            if floor:
                floors.append(run_clients(floor_port, args.slice, args.clients))
    finally:
        hasher.close()
        if floor:
            floor.terminate()
            floor.wait(10)
        for running, running_schema in ((server, schema), *([cheap] if cheap else [])):
            running.terminate()
            running.wait(10)
            if running_schema:
                drop_schema(running_schema)
        os.sched_setaffinity(0, cpus)
        shutil.rmtree(home, ignore_errors=True)
    return rounds, around, floors


def interval(rounds: list[tuple[int, float, int, float]], resamples: int = 2000) -> tuple[float, float]:
    """A 95% interval of the run's ratio from its own rounds (bootstrap: the rounds drawn again with
    replacement, the ratio of sums taken each time). The host's load moves each round's rates; the
    interval says how far that leaves the run's figure from the machine's."""
    draw = random.Random(0)
    ratios = []
    for _ in range(resamples):
        sample = draw.choices(rounds, k=len(rounds))
        logins = sum(r[0] for r in sample) / sum(r[1] for r in sample)
        ratios.append(logins / (sum(r[2] for r in sample) / sum(r[3] for r in sample)))
    ratios.sort()
    return ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=16, help="login slices, each followed by a hashing slice")
    parser.add_argument("--slice", type=float, default=2.0, help="seconds per slice")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    parser.add_argument("--threads", type=int, default=4, help="threads of the one gunicorn worker (gthread)")
    parser.add_argument("--embedded", action="store_true", help="SQLite + SQL-backed ephemeral store")
    parser.add_argument(
        "--overhead", action="store_true", help="also time logins with the cheapest argon2id: the cost around the hash"
    )
    parser.add_argument(
        "--floor", action="store_true", help="also time bench/floor_login_app.py: a login without framework or stores"
    )
    parser.add_argument(
        "--stores-share-core",
        action="store_true",
        help="leave PostgreSQL and Redis where the scheduler puts them, the worker's core included",
    )
    args = parser.parse_args()
    if not {0, 1} <= os.sched_getaffinity(0):
        sys.exit("bench/login.py needs CPUs 0 and 1 (server on 0, client on 1)")

    # The stores run on the client's core: in production they are other machines, and on the
    # worker's core their CPU time would be charged to the login.
    placement = nullcontext("placed by the scheduler")
    if not args.embedded and not args.stores_share_core:
        placement = stores_on({1})
    with placement as stores_where:
        rounds, around, floors = measure(args)
    stores = "SQLite + SQL ephemeral" if args.embedded else "PostgreSQL + Redis"
    worker = f"{args.worker_class}, {args.threads} threads" if args.worker_class == "gthread" else "sync"
    print(f"stores: {stores} ({stores_where}); gunicorn 1 worker ({worker}) on CPU 0; {args.clients} clients on CPU 1")
    for index, (logins, login_seconds, hashes, hash_seconds) in enumerate(rounds, 1):
        login_rate, hash_rate = logins / login_seconds, hashes / hash_seconds
        print(
            f"round {index}: {login_rate:6.1f} logins/s ({logins} logins)   "
            f"{hash_rate:6.1f} argon2id/s ({hashes} hashes)   ratio {login_rate / hash_rate:.3f}"
        )
    login_rate = sum(r[0] for r in rounds) / sum(r[1] for r in rounds)
    hash_rate = sum(r[2] for r in rounds) / sum(r[3] for r in rounds)
    print(f"password logins/s (GET /login + POST, over HTTP):          {login_rate:8.1f}")
    print(f"raw argon2id verifications/s (same parameters, one thread): {hash_rate:8.1f}")
    print(f"ratio logins/hashes: {login_rate / hash_rate:.3f}  (target >= 0.85)")
    print(f"median of the per-round ratios: {statistics.median(r[0] / r[1] / (r[2] / r[3]) for r in rounds):.3f}")
    low, high = interval(rounds)
    print(f"95% interval of the ratio over this run's rounds (bootstrap): {low:.3f} to {high:.3f}")
    if floors:
        floor_rate = sum(r[0] for r in floors) / sum(r[1] for r in floors)
        print(
            f"floor: a login with no framework and no stores (bench/floor_login_app.py), same worker: "
            f"{floor_rate:.1f} logins/s, ratio {floor_rate / hash_rate:.3f}"
        )
        print(f"Varco's ratio less the floor's, same run: {(login_rate - floor_rate) / hash_rate:+.3f}")
    if around:
        cheap_rate = sum(r[0] for r in around) / sum(r[1] for r in around)
        hash_ms, around_ms = 1000 / hash_rate, 1000 / cheap_rate
        print(
            f"logins/s with the cheapest argon2id (m=8 KiB, t=1): {cheap_rate:.1f}, i.e. {around_ms:.1f} ms around "
            f"each hash of {hash_ms:.1f} ms; ratio if the two simply added up: {hash_ms / (hash_ms + around_ms):.3f}"
        )


if __name__ == "__main__":
    main()
