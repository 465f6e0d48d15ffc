#!/usr/bin/env python3
"""Markdown tables from bench/results/*.json: medians (min–max over repetitions) and
ratios computed per round (the two configurations measured back to back in the same
round), then summarised the same way.
Usage: report.py [RESULTS_DIR=bench/results]; THROUGHPUT=file.json / SCALING=file.json pick
another throughput / scaling result."""
import json, os, statistics, sys
from benchlib import BENCH, med_spread

D = sys.argv[1] if len(sys.argv) > 1 else os.path.join(BENCH, "results")


def load(name):
    p = os.path.join(D, name)
    return json.load(open(p)) if os.path.exists(p) else None


def ratios(runs, a, b, key, conns):
    by = {}
    for r in runs:
        if r["conns"] == conns and r["config"] in (a, b):
            by.setdefault(r["rep"], {})[r["config"]] = r[key]
    return [v[a] / v[b] for v in by.values() if a in v and b in v and v[b]]


t = load(os.environ.get("THROUGHPUT", "throughput.json"))
if t:
    runs = t["runs"]
    print(f"### Throughput ({t['started']}, {t['dur_s']} s runs, {t['reps']} reps, `{t['command']}`)\n")
    print("| configuration | conns | req/s | p50 ms | p99 ms | non-2xx | sessions created | foreign CPU (cores) at start | load avg |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = list(dict.fromkeys(r["config"] for r in runs))
    for conns in t["conns"]:
        for n in names:
            rs = [r for r in runs if r["config"] == n and r["conns"] == conns]
            print(f"| {n} | {conns} | {med_spread([r['rps'] for r in rs])} | {med_spread([r['p50_ms'] for r in rs], '{:.2f}')} | "
                  f"{med_spread([r['p99_ms'] for r in rs], '{:.2f}')} | {sum(r['non2xx'] for r in rs)} | "
                  f"{sum(r['sessions_created_during_run'] for r in rs)} | {med_spread([r['foreign_cores'] for r in rs], '{:.2f}')} | "
                  f"{med_spread([r['loadavg1'] for r in rs], '{:.1f}')} |")
    print("\n| ratio (same round) | conns | throughput | p99 |")
    print("|---|---:|---:|---:|")
    for a, b in (("cohort-ack-balancer", "tomcat-nginx"), ("cohort-async-balancer", "tomcat-nginx"),
                 ("cohort-ack-balancer", "cohort-ack-nginx"), ("cohort-ack-balancer-norid", "cohort-ack-nginx"),
                 ("cohort-ack-balancer-norid", "cohort-ack-nginx-norid"), ("cohort-ack-balancer", "cohort-ack-nginx-norid"),
                 ("cohort-ack-nginx", "cohort-ack-nginx-norid"),
                 ("cohort-ack-balancer-norid", "tomcat-nginx"), ("cohort-owners2-balancer", "tomcat-nginx"), ("cohort-single", "tomcat-single"),
                 ("cohort-ack-balancer", "cohort-single"), ("tomcat-nginx", "tomcat-single")):
        for conns in t["conns"]:
            rr, pr = ratios(runs, a, b, "rps", conns), ratios(runs, a, b, "p99_ms", conns)
            if rr:
                print(f"| {a} / {b} | {conns} | {med_spread(rr, '{:.2f}')} | {med_spread(pr, '{:.2f}')} |")
    print("\nCPU seconds per run (median):")
    for conns in t["conns"]:
        for n in names:
            rs = [r for r in runs if r["config"] == n and r["conns"] == conns]
            keys = rs[0]["cpu_s"].keys() if rs else []
            print(f"- {n} c{conns}: " + ", ".join(f"{k} {statistics.median([r['cpu_s'][k] for r in rs]):.1f}" for k in keys))

l = load("lag.json")
if l:
    print(f"\n### Replication lag ({l['started']}, {l['writes']} writes × {l['reps']} reps, background {l['rate']} writes/s, `{l['command']}`)\n")
    print("| system | load | lag p50 ms | lag p99 ms | lag max ms | first poll current (of writes) | not seen in 2 s | write RTT p50 ms | foreign CPU |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for load_ in ("idle", "moderate"):
        for s in ("cohort-ack", "cohort-async", "tomcat"):
            rs = [r for r in l["runs"] if r["system"] == s and r["load"] == load_]
            print(f"| {s} | {load_} | {med_spread([r['lag_ms'].get('p50') for r in rs], '{:.3f}')} | "
                  f"{med_spread([r['lag_ms'].get('p99') for r in rs], '{:.3f}')} | {med_spread([r['lag_ms'].get('max') for r in rs], '{:.2f}')} | "
                  f"{med_spread([r['first_poll_current'] for r in rs])} | {sum(r['misses_after_2s'] for r in rs)} | "
                  f"{med_spread([r['write_rtt_ms'].get('p50') for r in rs], '{:.3f}')} | {med_spread([r['foreign_cores'] for r in rs], '{:.2f}')} |")
    for load_ in ("idle", "moderate"):
        for s in ("cohort-ack", "cohort-async"):
            by = {}
            for r in l["runs"]:
                if r["load"] == load_ and r["system"] in (s, "tomcat"):
                    by.setdefault(r["rep"], {})[r["system"]] = r["lag_ms"].get("p99")
            rr = [v[s] / v["tomcat"] for v in by.values() if s in v and v.get("tomcat")]
            print(f"- lag p99 {s} / tomcat, {load_}: {med_spread(rr, '{:.2f}')}")

sc = load(os.environ.get("SCALING", "scaling.json"))
if sc:
    runs = sc["runs"]
    print(f"\n### Past three nodes ({sc['started']}, {sc['dur_s']} s runs, {sc['reps']} reps, `{sc['command']}`)\n")
    print("| nodes | configuration | conns | req/s | p50 ms | p99 ms | CPU µs per request: nodes | front | non-2xx | sessions created |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = list(dict.fromkeys(r["config"] for r in runs))

    def per_request(r, front):
        return sum(v for k, v in r["cpu_s"].items() if (k == "front") == front) * 1e6 / r["requests"]
    for size in sc["sizes"]:
        for conns in sc["conns"]:
            for n in names:
                rs = [r for r in runs if r["config"] == n and r["conns"] == conns and r["nodes"] == size]
                print(f"| {size} | {n} | {conns} | {med_spread([r['rps'] for r in rs])} | {med_spread([r['p50_ms'] for r in rs], '{:.2f}')} | "
                      f"{med_spread([r['p99_ms'] for r in rs], '{:.2f}')} | {med_spread([per_request(r, False) for r in rs])} | "
                      f"{med_spread([per_request(r, True) for r in rs])} | {sum(r['non2xx'] for r in rs)} | "
                      f"{sum(r['sessions_created_during_run'] for r in rs)} |")
    print("\n| ratio (same round) | nodes | conns | throughput | p99 |")
    print("|---|---:|---:|---:|---:|")
    for a, b in (("cohort-every", "tomcat-delta"), ("cohort-owners2", "tomcat-backup"), ("cohort-owners2", "tomcat-delta")):
        for size in sc["sizes"]:
            sized = [r for r in runs if r["nodes"] == size]
            for conns in sc["conns"]:
                rr, pr = ratios(sized, a, b, "rps", conns), ratios(sized, a, b, "p99_ms", conns)
                if rr:
                    print(f"| {a} / {b} | {size} | {conns} | {med_spread(rr, '{:.2f}')} | {med_spread(pr, '{:.2f}')} |")
    print("\nSessions held per node after the pool was made:")
    for k, v in sc["held"].items():
        print(f"- {k}: " + ", ".join(f"{n} {c}" for n, c in v.items()))

m = load("memstate.json")
if m:
    print(f"\n### Memory and state transfer ({m['started']}, N = {m['N']}, {len(m['runs'])//2} reps, `{m['command']}`)\n")
    C = [r for r in m["runs"] if r["system"] == "cohort"]
    T = [r for r in m["runs"] if r["system"] == "tomcat"]
    print("| node | Cohort RSS B/session | Tomcat RSS B/session | Tomcat live heap B/session | Cohort RSS / Tomcat RSS | Cohort RSS / Tomcat live heap |")
    print("|---|---:|---:|---:|---:|---:|")
    for c, tn in (("n1", "node1"), ("n2", "node2"), ("n3", "node3")):
        rr = [a["rss_bytes_per_session"][c] / b["rss_bytes_per_session"][tn] for a, b in zip(C, T)]
        rh = [a["rss_bytes_per_session"][c] / b["live_heap_bytes_per_session"][tn] for a, b in zip(C, T)
              if b["live_heap_bytes_per_session"].get(tn)]
        print(f"| {c}/{tn} | {med_spread([r['rss_bytes_per_session'][c] for r in C])} | {med_spread([r['rss_bytes_per_session'][tn] for r in T])} | "
              f"{med_spread([r['live_heap_bytes_per_session'].get(tn) for r in T])} | {med_spread(rr, '{:.2f}')} | {med_spread(rh, '{:.2f}')} |")
    print("\n| system | sessions created/s | start → health s | start → all N sessions s | node 3 held at the end |")
    print("|---|---:|---:|---:|---|")
    for s, rs in (("cohort", C), ("tomcat", T)):
        print(f"| {s} | {med_spread([r['create']['per_s'] for r in rs])} | {med_spread([r['transfer']['start_to_health_s'] for r in rs], '{:.2f}')} | "
              f"{med_spread([r['transfer']['start_to_all_sessions_s'] for r in rs], '{:.2f}')} | {[r['transfer']['n3_sessions_at_end'] for r in rs]} |")

f = load("failover.json")
if f:
    print(f"\n### Failover ({f['started']}, {f['reps']} reps, `{f['command']}`)\n")
    print("| system | first request after kill -9 ms | normal p50 ms | extra ms | next 19 p50 ms | all 200 | count continued |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s in ("cohort", "tomcat"):
        rs = [r for r in f["runs"] if r["system"] == s]
        print(f"| {s} | {med_spread([r['first_ms'] for r in rs], '{:.1f}')} | {med_spread([r['normal_p50_ms'] for r in rs], '{:.2f}')} | "
              f"{med_spread([r['extra_ms'] for r in rs], '{:.1f}')} | {med_spread([r['following_p50_ms'] for r in rs], '{:.2f}')} | "
              f"{sum(r['all_200'] for r in rs)}/{len(rs)} | {sum(r['count_continued'] for r in rs)}/{len(rs)} |")
