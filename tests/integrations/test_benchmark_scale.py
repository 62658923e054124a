"""The scale benchmark's own instruments: its load generator, the steady-state rate, and its
readings of CPU and memory from /proc. The benchmark itself runs with ``manage.py benchmark scale``."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integrations.benchmarks.scale import CpuMeter, _raw_requests, _slope, group_rss_mb, load_generate
from integrations.taskqueue import broker


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept-alive connections, as gunicorn's

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.path, self.headers.get("X-Forwarded-Proto"), body))
        status = 500 if body == b"fail" else 200
        answer = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        if body == b"close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _raw(port: int, bodies: list[bytes]) -> list[bytes]:
    made = [(str(n), body, {"Content-Type": "application/json"}) for n, body in enumerate(bodies)]
    return _raw_requests(made=made, path="/webhooks/woocommerce/abc/", port=port)


def test_every_request_is_sent_once_on_kept_alive_connections(server):
    port = server.server_address[1]
    bodies = [f'{{"n": {n}}}'.encode() for n in range(300)]

    result = load_generate(port=port, raw=_raw(port, bodies), connections=4, seconds=30)

    assert result["sent"] == 300
    assert sorted(result["answered_ok"]) == list(range(300))
    assert result["errors"] == 0
    assert result["connections_opened"] == 4
    assert len(result["latencies"]) == 300
    assert sorted(body for _path, _proto, body in server.seen) == sorted(bodies)
    # As from the TLS proxy in front of production's gunicorn.
    assert {(path, proto) for path, proto, _body in server.seen} == {("/webhooks/woocommerce/abc/", "https")}
    assert 0 <= result["generator_cpu_share"] < 1.5


def test_failed_answers_and_closed_connections_are_counted(server):
    port = server.server_address[1]
    bodies = [b"ok", b"fail", b"close", b"ok", b"fail", b"ok"]

    result = load_generate(port=port, raw=_raw(port, bodies), connections=1, seconds=30)

    assert result["statuses"] == {200: 4, 500: 2}
    assert result["errors"] == 2
    assert sorted(result["answered_ok"]) == [0, 2, 3, 5]
    assert result["connections_opened"] == 2  # a new one after the server closed the first


def test_the_clock_stops_the_load(server):
    port = server.server_address[1]
    raw = _raw(port, [b"ok"] * 50_000)
    started = time.monotonic()

    result = load_generate(port=port, raw=raw, connections=2, seconds=0.5)

    assert time.monotonic() - started < 10  # 0.5 s and the answers in flight, on a busy machine
    assert 0 < result["sent"] < 50_000


def test_the_steady_rate_is_the_slope_of_invoices_over_time():
    assert _slope([10 + n / 4 for n in range(40)]) == pytest.approx(4.0)
    # A burst at the start does not change a slope taken after it.
    assert _slope([100 + n * 0.5 for n in range(20)]) == pytest.approx(2.0)
    assert _slope([1.0, 1.0]) is None


def test_a_process_groups_memory_and_cpu_are_read_from_proc():
    busy = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"],
        start_new_session=True,
    )
    try:
        meter = CpuMeter(groups={"busy": busy.pid})
        meter.start()
        time.sleep(0.8)
        used = meter.stop()
        processes = group_rss_mb(busy.pid)
    finally:
        busy.kill()
        busy.wait()
    assert used["busy"] > 0.05  # a share of 0.8 s on a busy machine
    assert processes[0][0] == busy.pid and processes[0][1] > 1


@pytest.mark.django_db
def test_one_broker_serves_every_task_of_a_process():
    assert broker() is broker()
