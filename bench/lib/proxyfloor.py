#!/usr/bin/env python3
"""The proxies alone (a profile helper, not a comparison of record): `cohort balancer`
and nginx (from `cohort config nginx`, with the anchor's tuning), each in front of the
same three stub backends (one nginx process answering every request with a fixed small
JSON body, like the demo's counter), alternating round by round.

With stub backends the proxy is most of the work, so its CPU per request can be compared
without the Cohort nodes' noise: the question is what `cohort balancer` spends per
request beyond what nginx spends. Session cookies name the three routes round-robin.

Usage: proxyfloor.py [DUR=6] [REPS=3] [CONNS=64] [METHOD=POST]
With BASELINE=/path/to/cohort, a second `cohort balancer` from that binary runs as a
third front ("baseline"), for a same-round A/B of two builds of the balancer.
"""
import json, os, sys, time
from benchlib import *

DUR = int(sys.argv[1]) if len(sys.argv) > 1 else 6
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
CONNS = int(sys.argv[3]) if len(sys.argv) > 3 else 64
METHOD = sys.argv[4] if len(sys.argv) > 4 else "POST"

STUB_PORTS = [9881, 9882, 9883]
FRONTS = {"balancer": 9880, "nginx": 9890}
BASELINE = os.environ.get("BASELINE")
if BASELINE:
    FRONTS["baseline"] = 9870
NAMES = ["n1", "n2", "n3"]

STUB_CONF = """worker_processes 1;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    error_log {prefix}/error.log warn;
    keepalive_requests 1000000;
{servers}
}}
"""
STUB_SERVER = """    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location / {{ return 200 '{{"count":42,"node":"{name}"}}'; }}
    }}"""


def start_stubs():
    prefix = os.path.join(RUN, "nginx-stubs")
    os.makedirs(prefix, exist_ok=True)
    servers = "\n".join(STUB_SERVER.format(port=p, name=n) for p, n in zip(STUB_PORTS, NAMES))
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(STUB_CONF.format(prefix=prefix, servers=servers))
    run_nginx("nginx-stubs", prefix, STUB_PORTS[0])


def backend_args():
    return [a for p, n in zip(STUB_PORTS, NAMES) for a in ("--backend", f"{n}={HOST}:{p}")]


def start_balancer(label, binary, port):
    spawn(label, [binary, "balancer", "--listen", f"{HOST}:{port}", "--log-level", "warning"] + BALANCER_LOOP_ARGS + backend_args())
    wait_until("cohort balancer", lambda: tcp_open(port), 15)


def start_fronts():
    start_balancer("proxyfloor-balancer", COHORT, FRONTS["balancer"])
    if BASELINE:
        start_balancer("proxyfloor-baseline", BASELINE, FRONTS["baseline"])
    prefix = os.path.join(RUN, "nginx-proxyfloor")
    os.makedirs(prefix, exist_ok=True)
    conf = subprocess.run([COHORT, "config", "nginx", "--listen", f"{HOST}:{FRONTS['nginx']}"] + backend_args(),
                          check=True, capture_output=True, text=True, timeout=30).stdout
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(tune_nginx(conf))
    run_nginx("proxyfloor-nginx", prefix, FRONTS["nginx"])


def make_pool(path, n=1000):
    """N session cookies (well-formed ids, 22-character keys) whose routes cycle through n1..n3."""
    with open(path, "w") as f:
        for i in range(n):
            f.write(f"k{i:021d}.{NAMES[i % 3]}\n")


result = {"machine": machine(), "baseline": BASELINE, "dur_s": DUR, "reps": REPS, "conns": CONNS, "method": METHOD,
          "command": "bench/lib/run.sh proxyfloor.py " + " ".join(sys.argv[1:]), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
          "runs": []}
try:
    os.makedirs(RUN, exist_ok=True)
    start_stubs()
    start_fronts()
    pool = f"{RUN}/pool-proxyfloor.txt"
    make_pool(pool)
    front_pid = {front: pid_of(f"proxyfloor-{front}") for front in FRONTS}
    stub_pids = [pid_of("nginx-stubs")] + children(pid_of("nginx-stubs"))
    url = lambda front: f"http://{HOST}:{FRONTS[front]}/api/counter"
    for front in FRONTS:  # warm-up
        wrk(url(front), pool, "COHORTSESSION", METHOD, CONNS, 2)
    for rep in range(REPS):
        order = list(FRONTS) if rep % 2 == 0 else list(reversed(FRONTS))
        for front in order:
            pids = [front_pid[front]] + children(front_pid[front])
            r = measured_wrk(url(front), pool, "COHORTSESSION", METHOD, CONNS, DUR,
                             {"front": pids, "stubs": stub_pids}, lambda: 0)
            r.update({"front": front, "rep": rep + 1,
                      "front_cpu_us_per_request": round(r["cpu_s"]["front"] * 1e6 / r["requests"], 1),
                      "stub_cpu_us_per_request": round(r["cpu_s"]["stubs"] * 1e6 / r["requests"], 1)})
            log(front, json.dumps(r))
            result["runs"].append(r)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "proxyfloor.json"), result)
    print("\nfront | req/s | p99 ms | front CPU µs per request | stubs CPU µs per request")
    for front in FRONTS:
        rs = [r for r in result["runs"] if r["front"] == front]
        print(f"{front} | {med_spread([r['rps'] for r in rs])} | {med_spread([r['p99_ms'] for r in rs], '{:.2f}')} | "
              f"{med_spread([r['front_cpu_us_per_request'] for r in rs], '{:.1f}')} | "
              f"{med_spread([r['stub_cpu_us_per_request'] for r in rs], '{:.1f}')}")
    for other in [f for f in FRONTS if f != "balancer"]:
        by_rep = {}
        for r in result["runs"]:
            by_rep.setdefault(r["rep"], {})[r["front"]] = r
        pairs = [(v["balancer"], v[other]) for v in by_rep.values() if "balancer" in v and other in v]
        print(f"balancer / {other} (same round): throughput {med_spread([a['rps'] / b['rps'] for a, b in pairs], '{:.2f}')}, "
              f"front CPU per request {med_spread([a['front_cpu_us_per_request'] / b['front_cpu_us_per_request'] for a, b in pairs], '{:.2f}')}")
finally:
    stop_all()
