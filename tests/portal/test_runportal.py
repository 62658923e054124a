"""`make run` end to end: every part comes up, answers, and Ctrl-C stops them all."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from integrations.sandboxes import demo
from integrations.sandboxes.process import free_port

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def _wait_for_line(process, needle: str, seconds: float) -> list[str]:
    lines = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        lines.append(line.rstrip())
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not printed; got:\n" + "\n".join(lines))


def _demo_orders_become_invoices(env):
    """The live pipeline: the shop's webhook reaches the portal, the task cluster transfers."""
    placed = subprocess.run(
        [sys.executable, str(MANAGE), "demo_orders", "--count", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert placed.returncode == 0, placed.stderr
    probe = (
        "from integrations.models import OrderTransfer as T; "
        "print(sorted(T.objects.values_list('first_seen_via', 'state')))"
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = (
            subprocess.run(
                [sys.executable, str(MANAGE), "shell", "-c", probe],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            .stdout.strip()
            .splitlines()[-1:]
        )
        states = states[0] if states else ""
        if states == "[('webhook', 'invoiced'), ('webhook', 'invoiced')]":
            return
        time.sleep(1)
    raise AssertionError(f"demo orders not invoiced through webhook and cluster: {states}")


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_runportal_starts_all_parts_and_stops_them_together(tmp_path, how):
    process, ports, env, lines = _runportal(tmp_path)
    try:
        printed = "\n".join(lines)
        assert "admin / run-test-password" in printed
        assert f"http://127.0.0.1:{ports['PORTAL_PORT']}/admin/" in printed

        portal = f"http://127.0.0.1:{ports['PORTAL_PORT']}"
        assert requests.get(f"{portal}/admin/login/", timeout=10).status_code == 200
        assert requests.get(f"{portal}/health/", timeout=10).json()["database"] == "ok"
        woo = requests.get(f"http://127.0.0.1:{ports['WOO_SANDBOX_PORT']}/wp-json/wc/v3/products", timeout=10)
        assert woo.status_code == 401  # the real REST API answers anonymous callers so
        token = requests.post(
            f"http://127.0.0.1:{ports['HOGIA_SANDBOX_PORT']}/connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": demo.HOGIA_CLIENT_ID,
                "client_secret": demo.HOGIA_CLIENT_SECRET,
            },
            timeout=10,
        )
        assert token.status_code == 200
        assert (tmp_path / "portal.sqlite3").exists()
        printed_addresses = re.findall(r"http://[^\s)]+", printed)
        assert len(printed_addresses) >= 4, printed
        for address in printed_addresses:  # what it tells people to open must open
            assert requests.get(address, timeout=10).status_code == 200, address
        if how == "ctrl-c":
            _demo_orders_become_invoices(env)
            # Set up as support would: every connection tested and passed, the shops green.
            probe = (
                "from integrations.models import HogiaConnection, Shop; "
                "print(sorted(Shop.objects.values_list('last_check_ok', flat=True)), "
                "list(HogiaConnection.objects.values_list('last_check_ok', flat=True)))"
            )
            checked = subprocess.run(
                [sys.executable, str(MANAGE), "shell", "-c", probe], env=env, capture_output=True, text=True
            )
            assert checked.stdout.strip().splitlines()[-1] == "[True, True] [True]", checked

        if how == "ctrl-c":  # a terminal's Ctrl-C reaches the whole foreground process group
            os.killpg(process.pid, signal.SIGINT)
        else:  # a service manager's stop reaches the parent only
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=40)
        for port in ports.values():
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=2)
            except requests.ConnectionError:
                continue
            raise AssertionError(f"port {port} still answers after {how}")
        assert (tmp_path / "sandbox-woocommerce.json").exists()  # state kept for the next start
    finally:
        _kill(process)


def _runportal(tmp_path) -> tuple[subprocess.Popen, dict, dict, list[str]]:
    """runportal in its own session (as a terminal runs ``make run``), once it has said what runs
    where: the process, the ports, its environment and the lines it printed."""
    ports = {"PORTAL_PORT": free_port(), "WOO_SANDBOX_PORT": free_port(), "HOGIA_SANDBOX_PORT": free_port()}
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "PORTAL_DATA_DIR": str(tmp_path),
        "PORTAL_ADMIN_PASSWORD": "run-test-password",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, str(MANAGE), "runportal"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        lines = _wait_for_line(process, "demo customer", 90)
    except BaseException:
        _kill(process)
        raise
    return process, ports, env, lines


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _kill(process: subprocess.Popen) -> None:
    """After a failed test: runportal and its parts, each of which leads a process group."""
    if process.poll() is not None:
        return
    for child in _children(process.pid):
        try:
            os.killpg(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_ctrl_c_is_a_normal_stop_exit_code_0_and_no_traceback(tmp_path):
    process, ports, _env, _lines = _runportal(tmp_path)
    try:
        portal = f"http://127.0.0.1:{ports['PORTAL_PORT']}"
        assert requests.get(f"{portal}/admin/login/", timeout=10).status_code == 200
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=40)
    finally:
        _kill(process)
    assert process.returncode == 0, output
    assert "CommandError" not in output and "Traceback" not in output, output
    assert output.rstrip().splitlines()[-1] == "Stopped.", output


def test_a_part_that_dies_on_its_own_stops_the_rest_with_an_error(tmp_path):
    process, ports, _env, _lines = _runportal(tmp_path)
    try:
        sandbox = next(
            pid
            for pid in _children(process.pid)
            if str(ports["HOGIA_SANDBOX_PORT"]) in Path(f"/proc/{pid}/cmdline").read_text()
        )
        os.kill(sandbox, signal.SIGKILL)
        output, _ = process.communicate(timeout=40)
    finally:
        _kill(process)
    assert process.returncode != 0, output
    assert "Hogia Smart sandbox stopped" in output, output


def test_static_files_and_the_favicon_are_not_logged_but_errors_are(tmp_path):
    process, ports, _env, _lines = _runportal(tmp_path)
    try:
        portal = f"http://127.0.0.1:{ports['PORTAL_PORT']}"
        login = requests.get(f"{portal}/admin/login/", timeout=10)
        assert login.status_code == 200
        assert requests.get(f"{portal}/static/admin/css/base.css", timeout=10).status_code == 200
        assert requests.get(f"{portal}/favicon.ico", timeout=10).status_code == 204  # no icon, no 404
        assert requests.get(f"{portal}/static/nothing-here.css", timeout=10).status_code == 404
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=40)
    finally:
        _kill(process)
    assert "GET /admin/login/" in output  # pages are still logged
    assert "base.css" not in output and "favicon" not in output, output
    assert 'GET /static/nothing-here.css HTTP/1.1" 404' in output, output  # and so are errors
