#!/usr/bin/env python3
"""Background load for lag.py: RATE session writes per second in total, paced, on 4
keep-alive connections, each write sent to the node its session's route names. Runs
until SIGTERM or MAX_S (600 s); prints the achieved rate on exit.
Usage: paced.py cohort|tomcat PORT1,PORT2,PORT3 POOLFILE RATE"""
import signal, sys, threading, time
from benchlib import Client

kind, ports, pool, rate = sys.argv[1], [int(p) for p in sys.argv[2].split(",")], sys.argv[3], float(sys.argv[4])
MAX_S, THREADS = 600, 4
ids = [l for l in open(pool).read().split() if l]
stop = threading.Event()
done = [0] * THREADS
errors = [0] * THREADS
signal.signal(signal.SIGTERM, lambda *_: stop.set())


def port_of(sid):
    return ports[int(sid.rsplit(".", 1)[1].lstrip("node").lstrip("n")) - 1]


def worker(k):
    clients = {p: Client(p) for p in ports}
    interval = THREADS / rate
    nxt = time.perf_counter()
    i = k
    while not stop.is_set():
        sid = ids[i % len(ids)]; i += THREADS
        try:
            if kind == "cohort":
                st = clients[port_of(sid)].req("POST", "/api/counter", {"Cookie": "COHORTSESSION=" + sid})[0]
            else:
                st = clients[port_of(sid)].req("GET", "/app/count.jsp", {"Cookie": "JSESSIONID=" + sid})[0]
            done[k] += 1
            if st != 200:
                errors[k] += 1
        except OSError:
            errors[k] += 1
        nxt += interval
        d = nxt - time.perf_counter()
        if d > 0:
            stop.wait(d)
        else:
            nxt = time.perf_counter()


t0 = time.time()
ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(THREADS)]
for t in ts: t.start()
stop.wait(MAX_S)
stop.set()
for t in ts: t.join(5)
el = time.time() - t0
print(f"background writes: {sum(done)} in {el:.1f} s = {sum(done) / el:.0f}/s, errors {sum(errors)}", flush=True)
