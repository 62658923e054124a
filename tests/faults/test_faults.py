"""The fault suite: orders placed while a part of the production stack fails, and the count at
the end of each case: placed, invoiced, held, needing attention, lost (0), duplicated (0).

Every part is a process (tests/faults/conftest.py); the cases run in this file's order on one
stack, each with its own orders. Counts are kept small (12-30 orders a case, 10,000 fuzzed
bodies) so that the whole suite stays within a few minutes on CI's two cores.
"""

from __future__ import annotations

import http.client
import itertools
import re
import threading
import time
import uuid
from collections import Counter

import pytest
import requests

from tests.faults.conftest import RETRY_SCALE
from tests.faults.fuzz import body_for, fixture_ids, fuzz_bodies

pytestmark = pytest.mark.faults

GIVE_UP = 120  # seconds an order may take, after its fault, to end invoiced (or held, ...)


def _assert_nothing_lost(counts: dict, *, invoiced: int) -> None:
    assert counts["lost"] == 0, counts
    assert counts["duplicated"] == 0, counts
    assert counts["invoiced"] == invoiced, counts


def _wait_until(condition, *, seconds: float, stack) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stack.check()
        if condition():
            return True
        time.sleep(0.1)
    return False


def _accepted(shop, ids: list[int]) -> int:
    from integrations.models import WebhookDelivery

    return (
        WebhookDelivery.objects.filter(
            shop=shop, resource_id__in=ids, outcome=WebhookDelivery.Outcome.ACCEPTED
        )
        .values("resource_id")
        .distinct()
        .count()
    )


def _processed(stack, name: str) -> int:
    """Tasks this cluster host's workers have started (django-q2 logs each one)."""
    path = stack.logs / f"{name}.log"
    return path.read_text(errors="replace").count(" processing ") if path.exists() else 0


def test_worker_killed_mid_invoice(case):
    """A cluster host's whole process group gets SIGKILL while its workers create invoices
    (Hogia Smart answers each call after 1 s); the other host finishes every order: the dead
    host's claims expire, the wake-ups it held in memory are sent again."""
    stack, shop = case, case.shops[0]
    started = time.monotonic()
    doomed, survivor = stack.clusters
    survivor.down_on_purpose = True
    survivor.stop()  # the doomed host takes all the work until it dies
    stack.hogia_control("POST", "faults", {"mode": "delay", "seconds": 1.0, "count": 40})
    ids = stack.place(12, shop=shop)

    def mid_invoice() -> bool:
        return list(stack.states(shop, ids).values()).count("transferring") >= 2

    assert _wait_until(mid_invoice, seconds=30, stack=stack), stack.states(shop, ids)
    in_flight = list(stack.states(shop, ids).values()).count("transferring")
    doomed.down_on_purpose = True
    doomed.kill()
    stack.hogia_normal()
    stack.cluster_restart(survivor)
    stack.settle(shop, ids, seconds=GIVE_UP)
    counts = stack.count(shop, ids)
    stack.record(
        "1. cluster host SIGKILLed mid-invoice",
        counts,
        time.monotonic() - started,
        f"{in_flight} orders were transferring when the host was killed",
    )
    _assert_nothing_lost(counts, invoiced=len(ids))


def test_redis_restarted_with_tasks_queued(case):
    """The orders' tasks wait in Redis while no cluster runs (the web host stores the deliveries,
    a stager sends their tasks: here this process, the hosts' stagers being stopped with them);
    Redis restarts (no persistence: every queued task is gone); the clusters start again and
    must bring every order back from the database alone."""
    from integrations.orders.wakeups import deliveries_send

    stack, shop = case, case.shops[1]
    started = time.monotonic()
    for cluster in stack.clusters:
        cluster.down_on_purpose = True
        cluster.stop()
    ids = stack.place(20, shop=shop)
    assert _wait_until(lambda: _accepted(shop, ids) == len(ids), seconds=30, stack=stack)
    assert deliveries_send() >= len(ids)
    queued = _tasks_in_redis(stack.redis.url)
    assert queued >= len(ids)
    stack.redis.restart()
    for cluster in stack.clusters:
        stack.cluster_restart(cluster)
    stack.settle(shop, ids, seconds=GIVE_UP)
    counts = stack.count(shop, ids)
    stack.record(
        "2. Redis restarted with tasks queued",
        counts,
        time.monotonic() - started,
        f"{queued} task(s) were in Redis when it restarted",
    )
    _assert_nothing_lost(counts, invoiced=len(ids))


def _tasks_in_redis(url: str) -> int:
    """Messages waiting in the broker's lists (django-q2 keeps its queue in one)."""
    import redis

    client = redis.Redis.from_url(url)
    return sum(client.llen(key) for key in client.keys("*") if client.type(key) == b"list")


def test_postgres_restarted_mid_run(case):
    """Orders placed at 10 a second in both shops while PostgreSQL restarts (``pg_ctl restart
    -m fast``): the web hosts may answer 5xx meanwhile and WooCommerce does not retry a
    delivery, so the order poll (every 5 minutes; here brought forward to 10 s after the last
    order) reads what the webhooks lost. Every order ends invoiced once."""
    stack = case
    started = time.monotonic()
    placed: dict[int, list[int]] = {0: [], 1: []}

    def place() -> None:
        for n in range(30):
            placed[n % 2].extend(stack.place(1, shop=stack.shops[n % 2]))
            time.sleep(0.1)

    placing = threading.Thread(target=place)
    placing.start()
    time.sleep(1.0)
    stack.postgres.restart("fast")
    placing.join()
    for index, shop in enumerate(stack.shops):
        stack.settle(shop, placed[index], seconds=GIVE_UP, poll_after=10)
    counts = _sum(stack.count(shop, placed[index]) for index, shop in enumerate(stack.shops))
    failed = _deliveries_failed(stack, placed)
    stack.record(
        "3. PostgreSQL restarted mid-run",
        counts,
        time.monotonic() - started,
        f"{failed} of the shops' deliveries failed (5xx or no answer) during the restart; the order "
        "poll queued 10 s after the last order",
    )
    _assert_nothing_lost(counts, invoiced=30)


def _sum(counts) -> dict:
    total: dict = {}
    for one in counts:
        for key, value in one.items():
            if isinstance(value, int):
                total[key] = total.get(key, 0) + value
            elif isinstance(value, list):
                total[key] = total.get(key, []) + value
    return total


def _deliveries_failed(stack, placed: dict[int, list[int]]) -> int:
    failed = 0
    for index, shop in enumerate(stack.shops):
        ids = set(placed[index])
        sent = requests.get(f"{shop.home_url}_sandbox/deliveries", timeout=30).json()["deliveries"]
        failed += sum(
            1
            for d in sent
            if d["resource_id"] in ids and (d["status"] is None or not 200 <= d["status"] < 300)
        )
    return failed


def test_hogia_down_for_30_simulated_minutes(case):
    """Every call to Hogia Smart fails with 503 for 30 minutes of simulated time (9 s with the
    retries 200 times faster), then Hogia Smart is back: every order is retried with its back-off
    and ends invoiced once."""
    from integrations.models import OrderTransfer

    stack, shop = case, case.shops[0]
    started = time.monotonic()
    stack.hogia_control("POST", "faults", {"mode": "status", "status": 503, "count": 1_000_000})
    ids = stack.place(20, shop=shop)
    time.sleep(max(0.0, 30 * 60 / RETRY_SCALE - (time.monotonic() - started)))
    stack.hogia_normal()
    stack.settle(shop, ids, seconds=GIVE_UP)
    counts = stack.count(shop, ids)
    attempts = list(
        OrderTransfer.objects.filter(shop=shop, woo_order_id__in=ids).values_list("attempts", flat=True)
    )
    stack.record(
        "4. Hogia Smart down for 30 simulated minutes",
        counts,
        time.monotonic() - started,
        f"retries 1:{RETRY_SCALE} (30 min = {30 * 60 / RETRY_SCALE:g} s); attempts per order "
        f"{min(attempts)}-{max(attempts)}",
    )
    _assert_nothing_lost(counts, invoiced=len(ids))


def test_429_storm(case):
    """A storm of 429s from Hogia Smart: the next 30 calls answered 429 (Retry-After 1 s), and its
    rate limit 4 calls a second (the portal's own budget off). The client waits each Retry-After,
    the transfer its back-off. All invoiced once."""
    stack, shop = case, case.shops[1]
    started = time.monotonic()
    before = stack.hogia_control("GET", "stats")
    stack.hogia_control("POST", "faults", {"mode": "status", "status": 429, "retry_after": 1, "count": 30})
    stack.hogia_control("POST", "rate-limit", {"requests": 4, "seconds": 1})
    ids = stack.place(20, shop=shop)
    stack.settle(shop, ids, seconds=GIVE_UP)
    after = stack.hogia_control("GET", "stats")
    stack.hogia_normal()
    counts = stack.count(shop, ids)
    stack.record(
        "5. 429 storm",
        counts,
        time.monotonic() - started,
        f"{after['requests'] - before['requests']} calls to Hogia Smart for {len(ids)} orders: "
        f"{after['faults_injected'] - before['faults_injected']} answered 429 by the storm, the rest "
        "under a rate limit of 4 a second",
    )
    _assert_nothing_lost(counts, invoiced=len(ids))


def _headers(shop, body: bytes, *, topic: str, delivery_id: str | None, signed: bool) -> dict:
    from integrations.webhooks import webhook_signature

    headers = {
        "User-Agent": "WooCommerce/11.0.1 Hookshot (WordPress/7.0.4)",
        "Content-Type": "application/json",
        "X-Forwarded-Proto": "https",  # as from the TLS proxy in front of the web hosts
        "X-WC-Webhook-Source": shop.home_url,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": topic.partition(".")[2],
        "X-WC-Webhook-ID": "1",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
    }
    if signed:
        headers["X-WC-Webhook-Signature"] = webhook_signature(body=body, secret=shop.webhook_secret)
    return headers


def _order_body(stack, shop, woo_id: int) -> bytes:
    """The order's JSON as the shop's REST API gives it (the same bytes its webhook carries)."""
    from integrations.clients.oauth1 import oauth1_sign

    url = f"{shop.home_url}wp-json/wc/v3/orders/{woo_id}"
    query = oauth1_sign(
        method="GET", url=url, params=[], consumer_key=shop.consumer_key, consumer_secret=shop.consumer_secret
    )
    response = requests.get(url, params=query, timeout=30)
    response.raise_for_status()
    return response.content


def test_same_webhook_50_times_at_once(case):
    """One signed delivery (same body, same delivery id) sent 50 times at the same moment, to both
    web hosts (threads released by a barrier): no 5xx, one order, one invoice."""
    from integrations.intake import webhook_url

    stack, shop = case, case.shops[0]
    started = time.monotonic()
    (woo_id,) = stack.place(1, shop=shop)
    body = _order_body(stack, shop, woo_id)
    headers = _headers(shop, body, topic="order.created", delivery_id=uuid.uuid4().hex, signed=True)
    path = re.sub(r"^https?://[^/]+", "", webhook_url(shop=shop))
    barrier = threading.Barrier(50)
    statuses: list[int] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        port = stack.webs[n % 2].port
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.connect()
        barrier.wait()
        try:
            connection.request("POST", path, body=body, headers=headers)
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException):
            status = 0
        finally:
            connection.close()
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stack.settle(shop, [woo_id], seconds=GIVE_UP)
    counts = stack.count(shop, [woo_id])
    answers = Counter(statuses)
    stack.record(
        "6. the same webhook 50 times at once",
        counts,
        time.monotonic() - started,
        "answers " + ", ".join(f"{status or 'no answer'} x{n}" for status, n in sorted(answers.items())),
    )
    assert all(0 < status < 500 for status in statuses), answers
    assert answers[200] >= 1, answers
    _assert_nothing_lost(counts, invoiced=1)


FUZZ_ORDERS = 4  # the shop's real orders: the mutated bodies get their ids


def test_fuzzed_webhook_bodies(case):
    """10,000 webhook bodies from Hypothesis (the strategies of
    tests/integrations/test_order_payload_property.py, the real store's orders mutated, with the
    ids of this shop's real orders; tests/faults/fuzz.py), signed (3 in 4) or not, sent to both web hosts on kept-alive connections: no 5xx;
    every order a body was accepted for ends in a transfer that is settled (the real ones
    invoiced once, whatever the mutated bodies said about them)."""
    from integrations.intake import webhook_url
    from integrations.models import WebhookDelivery

    stack, shop = case, case.shops[1]
    started = time.monotonic()
    unrecorded = stack.results_unrecorded()
    real_ids = stack.place(FUZZ_ORDERS, shop=shop)
    stack.settle(shop, real_ids, seconds=GIVE_UP)
    waited = time.monotonic()
    made = fuzz_bodies(stack.fuzz, stack.fuzz_path, timeout=240)
    waited = time.monotonic() - waited
    real = {fixture: real_ids[n % len(real_ids)] for n, fixture in enumerate(fixture_ids())}
    bodies = [(body_for(body, real), topic, signed) for body, topic, signed in made]
    sending = time.monotonic()
    path = re.sub(r"^https?://[^/]+", "", webhook_url(shop=shop))
    first_delivery = WebhookDelivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    statuses = _send_all(stack, shop, path, bodies, threads=8)
    sent = time.monotonic() - sending
    accepted = set(
        WebhookDelivery.objects.filter(
            shop=shop,
            pk__gt=first_delivery,
            outcome=WebhookDelivery.Outcome.ACCEPTED,
            topic__startswith="order.",
        )
        .exclude(resource_id=None)
        .values_list("resource_id", flat=True)
    )
    ids = real_ids + sorted(accepted - set(real_ids))
    # Every accepted delivery queued a task: the case ends when they all ran, not only when
    # each order reached an end state (an order seen again later may move on), and the next
    # case starts with an empty queue and both hosts' monitors caught up.
    stack.drain(seconds=GIVE_UP, baseline=unrecorded)
    stack.settle(shop, ids, seconds=GIVE_UP)
    counts = stack.count(shop, ids)
    answers = Counter(statuses)
    stack.record(
        "7. 10,000 fuzzed webhook bodies",
        counts,
        time.monotonic() - started,
        f"{len(bodies)} bodies (waited {waited:.0f} s for their maker), sent in {sent:.0f} s "
        f"({len(bodies) / sent:.0f}/s); answers "
        + ", ".join(f"{status or 'no answer'} x{n}" for status, n in sorted(answers.items()))
        + f"; {len(accepted)} order id(s) accepted ({len(accepted - set(real_ids))} made up by the fuzzer); "
        f"filtered {counts['filtered']}",
    )
    assert not [status for status in statuses if status >= 500 or status == 0], answers
    assert counts["lost"] == 0 and counts["duplicated"] == 0, counts
    real = stack.count(shop, real_ids)
    assert real["invoiced"] == len(real_ids), real


def _send_all(stack, shop, path: str, bodies, *, threads: int) -> list[int]:
    """Each body once, spread over both web hosts by ``threads`` senders on kept-alive
    connections; the answers' statuses (0: no answer)."""
    counter = itertools.count()
    statuses: list[int] = []
    lock = threading.Lock()

    def sender(n: int) -> None:
        port = stack.webs[n % 2].port
        mine = []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while (index := next(counter)) < len(bodies):
            body, topic, signed = bodies[index]
            headers = _headers(shop, body, topic=topic, delivery_id=None, signed=signed)
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                mine.append(response.status)
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException):
                mine.append(0)
                connection.close()
        connection.close()
        with lock:
            statuses.extend(mine)

    senders = [threading.Thread(target=sender, args=(n,)) for n in range(threads)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    return statuses


def test_two_web_hosts_and_two_cluster_hosts(case):
    """Orders in both shops (Butik 1's webhooks go to web host 1, Butik 2's to web host 2), both
    cluster hosts taking work from the one broker and the one database: all invoiced once."""
    stack = case
    started = time.monotonic()
    before = [_processed(stack, part.name) for part in stack.clusters]
    placed: dict[int, list[int]] = {0: [], 1: []}
    for n in range(30):
        placed[n % 2].extend(stack.place(1, shop=stack.shops[n % 2]))
    for index, shop in enumerate(stack.shops):
        stack.settle(shop, placed[index], seconds=GIVE_UP)
    counts = _sum(stack.count(shop, placed[index]) for index, shop in enumerate(stack.shops))
    tasks = [_processed(stack, part.name) - before[n] for n, part in enumerate(stack.clusters)]
    stack.record(
        "8. two web hosts, two cluster hosts",
        counts,
        time.monotonic() - started,
        f"tasks run by cluster host 1: {tasks[0]}, by cluster host 2: {tasks[1]}",
    )
    _assert_nothing_lost(counts, invoiced=30)
    assert all(tasks), tasks
