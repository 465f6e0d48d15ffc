#!/usr/bin/env python3
"""Headless Chromium against `cohort demo`: the session survives the death of its node.

Starts `cohort demo --port <free>` (three nodes and the balancer), opens the demo page
through the balancer in headless Chromium (driven over the Chrome DevTools Protocol with
the standard library only: no Selenium, no network), reads the session id and counter,
presses Increment, kills the serving node's process with SIGKILL, reloads the page and
checks: same random part of the session id, the counter where it was, another node named
on the page, the id rebound to that node. Saves before/after screenshots in --out.

Usage: scripts/browser-test.py --cohort PATH [--out DIR] [--chromium PATH] [--timeout S]
Exit status 0 on success, 1 on a failed check, 2 on a setup problem.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
from devtools import DevTools, log  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CheckFailed(Exception):
    pass


def poll(what, timeout, produce, interval=0.1):
    """Calls produce() until it returns a non-None value; raises on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = produce()
            if value is not None:
                return value
        except CheckFailed:
            raise
        except Exception as error:  # not yet: keep the reason for the timeout message
            last = error
        if time.monotonic() >= deadline:
            raise CheckFailed(f"timed out after {timeout} s waiting for {what}" + (f" (last: {last})" if last else ""))
        time.sleep(interval)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


READ_PAGE = """(() => {
  if (window.__cohortOld) return null;
  const text = id => { const e = document.getElementById(id); return e ? e.textContent.trim() : null; };
  if (document.readyState !== 'complete' || text('count') === null) return null;
  return {node: text('node'), session: text('session'), count: parseInt(text('count'), 10),
          crash: document.getElementById('crash') !== null, increment: document.getElementById('increment') !== null,
          rows: Array.from(document.querySelectorAll('#members tr')).slice(1)
                     .map(row => Array.from(row.cells).map(cell => cell.textContent.trim()))};
})()"""


def read_page(tools, what, timeout=15):
    """The fields of the current document once it has loaded (and is not marked old)."""
    return poll(what, timeout, lambda: tools.evaluate(READ_PAGE))


def mark_old(tools):
    """Marks the current document, so read_page waits for the next one."""
    tools.evaluate("window.__cohortOld = true")


def increment(tools, what):
    """Presses Increment (a POST, then the page reloads itself); returns the new page."""
    mark_old(tools)
    tools.evaluate("document.getElementById('increment').click()")
    return read_page(tools, what)


def random_part(session_id):
    return session_id.rpartition(".")[0]


def route(session_id):
    return session_id.rpartition(".")[2]


# --- processes ---------------------------------------------------------------------------

def children_of(pid):
    """Pids whose parent is pid, with their command lines (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
            parent = int(stat.rpartition(")")[2].split()[1])
            if parent != pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                arguments = [part.decode(errors="replace") for part in file.read().split(b"\0") if part]
            found.append((int(entry), arguments))
        except (OSError, ValueError, IndexError):
            continue
    return found


def node_pid(demo_pid, name):
    for pid, arguments in children_of(demo_pid):
        if "node" in arguments and "--name" in arguments:
            index = arguments.index("--name")
            if index + 1 < len(arguments) and arguments[index + 1] == name:
                return pid
    return None


def is_gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except OSError:
        return True


def stop(process, name, grace=5):
    """SIGTERM to the process group, then SIGKILL after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    descendants = [pid for pid, _ in children_of(process.pid)]
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log(f"{name} still running {grace} s after SIGTERM: SIGKILL")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for pid in descendants:  # nodes the demo could not stop, if any
        if not is_gone(pid):
            os.kill(pid, signal.SIGKILL)


def find_chromium(explicit):
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


# --- the scenario ------------------------------------------------------------------------

def scenario(cohort, chromium, out, work, timeout):
    port = free_port()
    demo_log = open(os.path.join(work, "demo.log"), "w+")
    demo = subprocess.Popen([cohort, "demo", "--port", str(port)], stdout=demo_log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    browser = None
    try:
        started = time.monotonic()
        url = f"http://127.0.0.1:{port}/"

        def announced():
            if demo.poll() is not None:
                raise CheckFailed(f"cohort demo exited with {demo.returncode} before printing its URL")
            with open(demo_log.name) as file:
                return True if f"Cohort demo: {url}" in file.read() else None
        poll(f"`cohort demo` to print `Cohort demo: {url}`", 60, announced)
        log(f"cohort demo printed its URL after {time.monotonic() - started:.1f} s: {url}")

        profile = os.path.join(work, "profile")
        browser = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--no-proxy-server",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--window-size=1000,900", f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=open(os.path.join(work, "chromium.log"), "w"), stderr=subprocess.STDOUT, start_new_session=True)

        def devtools_port():
            if browser.poll() is not None:
                raise CheckFailed(f"chromium exited with {browser.returncode}; see {work}/chromium.log")
            with open(os.path.join(profile, "DevToolsActivePort")) as file:
                return int(file.readline().strip())
        debug_port = poll("chromium's DevToolsActivePort file", 30, devtools_port)

        def page_target():
            with urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json/list", timeout=5) as response:
                targets = json.load(response)
            return next((t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"), None)
        tools = DevTools(poll("a page target in chromium", 15, page_target))
        tools.call("Page.enable")
        tools.call("Emulation.setDeviceMetricsOverride", width=1000, height=900, deviceScaleFactor=1, mobile=False)

        # 1. The page through the balancer: a new session, counter 0. Press Increment twice.
        tools.call("Page.navigate", url=url)
        first = read_page(tools, "the demo page", timeout=30)
        log(f"page: node {first['node']}, session {first['session']}, count {first['count']}")
        if not first["increment"]:
            raise CheckFailed("the demo page has no #increment button")
        if not first["crash"]:
            raise CheckFailed("the demo page (demo mode) has no #crash button")
        before = first
        for _ in range(2):
            expected = before["count"] + 1
            before = increment(tools, f"the page after Increment (count {expected} expected)")
            if before["count"] != expected:
                raise CheckFailed(f"after Increment the counter shows {before['count']}, expected {expected}")
        if random_part(before["session"]) != random_part(first["session"]):
            raise CheckFailed(f"the session changed without a failure: {first['session']} -> {before['session']}")
        log(f"before: node {before['node']}, session {before['session']}, count {before['count']}")
        before_png = os.path.join(out, "before.png")
        tools.screenshot(before_png)

        # 2. kill -9 the serving node's process (the demo restarts it after a few seconds,
        #    so the reload must come right after).
        victim = before["node"]
        pid = node_pid(demo.pid, victim)
        if pid is None:
            raise CheckFailed(f"no child process of cohort demo (pid {demo.pid}) runs node {victim}: {children_of(demo.pid)}")
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        poll(f"node {victim} (pid {pid}) to die", 5, lambda: True if is_gone(pid) else None, interval=0.02)
        log(f"kill -9 {pid} (node {victim})")

        # 3. Reload: same session, same counter, another node, id rebound to it.
        mark_old(tools)
        tools.call("Page.reload", ignoreCache=True)
        after = read_page(tools, "the reloaded page")
        log(f"after reload ({time.monotonic() - killed_at:.2f} s after the kill): node {after['node']}, "
            f"session {after['session']}, count {after['count']}")
        failures = []
        if random_part(after["session"]) != random_part(before["session"]):
            failures.append(f"new session after the failover: {before['session']} -> {after['session']}")
        if after["count"] != before["count"]:
            failures.append(f"counter {after['count']} after the failover, was {before['count']}")
        if after["node"] == victim:
            failures.append(f"the page still names the killed node {victim}")
        if route(after["session"]) != after["node"]:
            failures.append(f"session id {after['session']} not rebound to the serving node {after['node']}")

        # 4. The counter goes on on the new node.
        expected = after["count"] + 1
        last = increment(tools, f"the page after Increment on the new node (count {expected} expected)")
        if last["count"] != expected:
            failures.append(f"Increment after the failover shows {last['count']}, expected {expected}")
        if last["node"] != after["node"]:
            failures.append(f"not sticky after the failover: {after['node']} then {last['node']}")
        # Best effort, for the screenshot: the members table showing the victim down (it is
        # detected in about 2 s; the demo starts it again 3 s after the kill).
        def victim_down():
            mark_old(tools)
            tools.call("Page.reload")
            page = read_page(tools, "the reloaded page")
            rows = [row for row in page["rows"] if row and row[0].split(" ")[0] == victim]
            return page if rows and all(len(row) > 1 and row[1] != "alive" for row in rows) else None
        try:
            last = poll(f"the page to list {victim} as not alive", 2.8, victim_down, interval=0.2)
        except CheckFailed as reason:
            log(f"(screenshot taken anyway: {reason})")
        after_png = os.path.join(out, "after.png")
        tools.screenshot(after_png)
        log(f"after increment: node {last['node']}, session {last['session']}, count {last['count']}")
        if failures:
            raise CheckFailed("; ".join(failures))
        log(f"screenshots: {before_png} {after_png}")
    finally:
        signal.alarm(0)  # the overall limit must not cut the cleanup short
        stop(browser, "chromium")
        stop(demo, "cohort demo")
        demo_log.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", required=True, help="the cohort executable")
    parser.add_argument("--out", default=os.path.join(REPO, "artifacts", "browser"), help="screenshot directory")
    parser.add_argument("--chromium", help="the Chromium executable (default: found on PATH)")
    parser.add_argument("--timeout", type=float, default=120, help="overall limit in seconds")
    arguments = parser.parse_args()

    chromium = find_chromium(arguments.chromium)
    if not chromium:
        log("chromium is not installed (apt-get install chromium)")
        return 2
    if not os.access(arguments.cohort, os.X_OK):
        log(f"not an executable: {arguments.cohort}")
        return 2
    os.makedirs(arguments.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="cohort-browser-")

    def overall_timeout(signum, frame):
        raise CheckFailed(f"the browser test took longer than {arguments.timeout} s")
    signal.signal(signal.SIGALRM, overall_timeout)
    signal.alarm(int(arguments.timeout))
    try:
        scenario(arguments.cohort, chromium, arguments.out, work, arguments.timeout)
    except CheckFailed as failure:
        log(f"FAILED: {failure}")
        for name in ("demo.log", "chromium.log"):
            path = os.path.join(work, name)
            if os.path.exists(path):
                with open(path, errors="replace") as file:
                    text = file.read()
                log(f"----- {path} (last 6000 bytes)\n{text[-6000:]}")
        log(f"work directory kept: {work}")
        return 1
    finally:
        signal.alarm(0)
    shutil.rmtree(work, ignore_errors=True)
    log("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
