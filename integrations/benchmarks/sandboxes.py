"""How many requests per second each sandbox serves on this machine.

Later benchmarks are judged against these figures: a flow that needs N requests
cannot finish faster than N / rate. Each sandbox runs in its own process (as in
``make run``); the load comes from threads with keep-alive connections, each
request authenticated as the portal's clients do (OAuth 1.0a signature for
WooCommerce, a bearer token for Hogia Smart).
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from typing import Callable
from urllib.parse import urlencode

import requests

from integrations.clients.oauth1 import oauth1_sign
from integrations.sandboxes import demo
from integrations.sandboxes.process import SandboxProcess

THREADS = 4
SECONDS = 5.0


def _load(port: int, make_request: Callable[[], tuple[str, str, dict]]) -> dict:
    """Hammer one port for SECONDS with THREADS connections; count answers and latencies."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + SECONDS

    def worker():
        nonlocal errors
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine: list[float] = []
        failed = 0
        while time.perf_counter() < stop_at:
            method, path, headers = make_request()
            started = time.perf_counter()
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                failed += 1
        connection.close()
        with lock:
            latencies.extend(mine)
            errors += failed

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 2) if latencies else None,
    }


def _woocommerce(say) -> dict:
    _prefix, _name, key, secret, _unit = demo.WOO_STORES[0]
    with SandboxProcess("woocommerce") as sandbox:
        url = f"http://127.0.0.1:{sandbox.port}/wp-json/wc/v3/products"

        def list_products():
            query = oauth1_sign(
                method="GET", url=url, params=[("per_page", "10")], consumer_key=key, consumer_secret=secret
            )
            return "GET", "/wp-json/wc/v3/products?" + urlencode(query), {}

        say(
            f"WooCommerce sandbox on port {sandbox.port}: GET products?per_page=10, "
            f"{THREADS} connections, {SECONDS:g} s"
        )
        figures = _load(sandbox.port, list_products)
    say(
        f"  {figures['rps']} requests/s, p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, "
        f"{figures['errors']} errors"
    )
    return figures


def _hogia(say) -> dict:
    with SandboxProcess("hogia") as sandbox:
        session = requests.Session()
        session.post(f"{sandbox.url}/_sandbox/rate-limit", json={"requests": 0}).raise_for_status()
        token = session.post(
            f"{sandbox.url}/connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": demo.HOGIA_CLIENT_ID,
                "client_secret": demo.HOGIA_CLIENT_SECRET,
            },
        ).json()["access_token"]
        path = f"/{demo.HOGIA_ORGANIZATION_ID}/articles?" + urlencode(
            {"api-version": "2025-02-13", "page": 1, "pageSize": 10}
        )
        headers = {"Authorization": f"Bearer {token}"}
        say(
            f"Hogia Smart sandbox on port {sandbox.port}: GET articles?pageSize=10 "
            f"(rate limit off), {THREADS} connections, {SECONDS:g} s"
        )
        figures = _load(sandbox.port, lambda: ("GET", path, headers))
    say(
        f"  {figures['rps']} requests/s, p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, "
        f"{figures['errors']} errors"
    )
    return figures


def run(*, say) -> dict:
    woo = _woocommerce(say)
    hogia = _hogia(say)
    return {
        "woocommerce_rps": woo["rps"],
        "woocommerce_p50_ms": woo["p50_ms"],
        "woocommerce_p95_ms": woo["p95_ms"],
        "woocommerce_errors": woo["errors"],
        "hogia_rps": hogia["rps"],
        "hogia_p50_ms": hogia["p50_ms"],
        "hogia_p95_ms": hogia["p95_ms"],
        "hogia_errors": hogia["errors"],
        "threads": THREADS,
        "seconds_each": SECONDS,
    }
