"""The replication-lag probe shared by lag.py and ab_lag.py (see lag.py's docstring for
the method): create a session on node 1, write it there, poll node 2 until it shows it."""
import json, re, time
from benchlib import Client, summary

POLL_DEADLINE_S = 2.0
RX_TC = re.compile(r"id=(\S+) count=(\S+) node=(\S+)")


class CohortProbe:
    def __init__(self, cl):
        self.cl = cl

    def create(self, c):
        st, body, h, _ = c.req("POST", "/api/payload?bytes=1024")
        assert st == 200, body
        return json.loads(body)["id"]

    def write(self, c, sid):
        st, body, h, dt = c.req("POST", "/api/counter", {"Cookie": "COHORTSESSION=" + sid})
        assert st == 200, body
        return json.loads(body)["count"], dt

    def read(self, c, sid):
        st, body, h, dt = c.req("GET", "/api/session", {"Cookie": "COHORTSESSION=" + sid})
        return (json.loads(body)["count"] if st == 200 else None), dt

    def port(self, k):
        return self.cl.http(f"n{k}")


class TomcatProbe:
    def create(self, c):
        st, body, h, _ = c.req("GET", "/app/count1k.jsp")
        return RX_TC.search(body).group(1)

    def write(self, c, sid):
        st, body, h, dt = c.req("GET", "/app/count.jsp", {"Cookie": "JSESSIONID=" + sid})
        return int(RX_TC.search(body).group(2)), dt

    def read(self, c, sid):
        st, body, h, dt = c.req("GET", "/app/read.jsp", {"Cookie": "JSESSIONID=" + sid})
        m = RX_TC.search(body)
        return (int(m.group(2)) if m and m.group(2).isdigit() else None), dt

    def port(self, k):
        return 8080 + k


def measure(probe, writes):
    w, r2 = Client(probe.port(1)), Client(probe.port(2))
    sid = probe.create(w)
    for _ in range(5):
        probe.write(w, sid)
    lags, polls, misses, wrtt = [], [], 0, []
    for _ in range(writes):
        k, wdt = probe.write(w, sid)
        t_w = time.perf_counter()
        wrtt.append(wdt * 1000)
        n = 0
        while True:
            v, _ = probe.read(r2, sid)
            n += 1
            now = time.perf_counter()
            if v == k:
                lags.append((now - t_w) * 1000); polls.append(n); break
            if now - t_w > POLL_DEADLINE_S:
                misses += 1; break
    w.close(); r2.close()
    return {"lag_ms": summary(lags), "first_poll_current": sum(1 for p in polls if p == 1),
            "misses_after_2s": misses, "write_rtt_ms": summary(wrtt), "writes": writes}
