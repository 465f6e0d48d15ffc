"""Shared helpers of the macro benchmarks (stdlib only).

Starts and stops Cohort nodes, the Cohort balancer, nginx and Tomcat (the Tomcat parts
follow the anchor harness in ../shared/anchors/tomcat/scripts: setup.sh, node.sh,
nginx.sh, common.py, throughput.py), runs wrk, records load.

Every process started here gets a pid file in RUN/pids/; stop_all() (called in a finally
and by the shell wrapper's trap, bench/lib/cleanup.sh) stops exactly those processes.
"""
import http.client, json, os, re, shutil, signal, statistics, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
REPO = os.path.dirname(BENCH)
RUN = os.environ.get("BENCH_RUN", "/tmp/cohort-bench")
PIDS = os.path.join(RUN, "pids")
COHORT = os.environ.get("COHORT_BINARY", os.path.join(REPO, ".build", "release", "cohort"))
# `--event-loops` for every Cohort node and balancer: 1 by default, as three nodes, a
# balancer and wrk share the machine's cores (see bench/README.md); "" = Cohort's default
# (one loop per core).
EVENT_LOOPS = os.environ.get("COHORT_EVENT_LOOPS", "1")
EVENT_LOOP_ARGS = ["--event-loops", EVENT_LOOPS] if EVENT_LOOPS else []
# The balancer's own `--event-loops`, if it should differ from the nodes'.
BALANCER_LOOPS = os.environ.get("COHORT_BALANCER_EVENT_LOOPS", EVENT_LOOPS)
BALANCER_LOOP_ARGS = ["--event-loops", BALANCER_LOOPS] if BALANCER_LOOPS else []
CATALINA_HOME = "/usr/share/tomcat10"
HOST = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ---------------------------------------------------------------- process bookkeeping

def _pidfile(label):
    return os.path.join(PIDS, label + ".pid")


def track(label, pid):
    os.makedirs(PIDS, exist_ok=True)
    with open(_pidfile(label), "w") as f:
        f.write(str(pid))


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop_pid(pid, sig=signal.SIGTERM, wait_s=20.0):
    """Signals pid and waits (bounded) for it to go; SIGKILL after wait_s."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    t0 = time.time()
    while time.time() - t0 < wait_s:
        try:
            # reap it if it is our child
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            if not alive(pid):
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    except ProcessLookupError:
        pass


def stop(label, sig=signal.SIGTERM, wait_s=20.0):
    f = _pidfile(label)
    if not os.path.exists(f):
        return
    pid = int(open(f).read().strip() or 0)
    if pid > 0:
        stop_pid(pid, sig, wait_s)
    os.remove(f)


def kill9(label):
    """SIGKILL, like a crash; returns the pid."""
    f = _pidfile(label)
    pid = int(open(f).read().strip())
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    os.remove(f)
    return pid


def pid_of(label):
    return int(open(_pidfile(label)).read().strip())


def stop_all():
    if not os.path.isdir(PIDS):
        return
    labels = [f[:-4] for f in os.listdir(PIDS) if f.endswith(".pid")]
    threads = [threading.Thread(target=stop, args=(l,)) for l in labels]
    for t in threads: t.start()
    for t in threads: t.join()


def spawn(label, argv, logname=None, env=None):
    os.makedirs(os.path.join(RUN, "logs"), exist_ok=True)
    out = open(os.path.join(RUN, "logs", (logname or label) + ".log"), "ab")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env={**os.environ, **(env or {})}, start_new_session=True)
    track(label, p.pid)
    return p.pid


# ---------------------------------------------------------------- HTTP

class Client:
    """One keep-alive HTTP/1.1 connection."""
    def __init__(self, port, timeout=10.0):
        self.port, self.timeout, self.conn = port, timeout, None

    def req(self, method, path, headers=None):
        """(status, body text, headers dict, seconds). Reconnects once on a dead socket."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            t0 = time.perf_counter()
            try:
                self.conn.request(method, path, body=b"" if method == "POST" else None, headers=headers or {})
                r = self.conn.getresponse()
                body = r.read().decode(errors="replace")
                return r.status, body, {k.lower(): v for k, v in r.getheaders()}, time.perf_counter() - t0
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


def get_json(port, path, timeout=5.0):
    c = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, (json.loads(body) if r.status == 200 else body.decode(errors="replace"))
    finally:
        c.close()


def wait_until(what, pred, timeout_s, interval=0.1):
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout_s:
        try:
            if pred():
                return time.time() - t0
        except OSError as e:
            last = e
        time.sleep(interval)
    raise TimeoutError(f"{what}: not after {timeout_s} s (last error: {last})")


# ---------------------------------------------------------------- Cohort

def cohort_keygen():
    path = os.path.join(RUN, "cluster.key")
    if not os.path.exists(path):
        os.makedirs(RUN, exist_ok=True)
        subprocess.run([COHORT, "keygen", "--out", path], check=True, capture_output=True, timeout=30)
    return path


class CohortCluster:
    """`cohort node` processes n1..nK on http BASE+1.., cluster CBASE+1..; optional
    `cohort balancer` on BASE and nginx (from `cohort config nginx`) on NGINX_PORT."""

    def __init__(self, tag, http_base, cluster_base, nodes=3, durability="acknowledged", env=None, placement=None,
                 binary=None):
        self.tag, self.http_base, self.cluster_base = tag, http_base, cluster_base
        self.env = env
        # the `cohort` executable of this cluster's nodes and balancer (default COHORT)
        self.binary = binary or COHORT
        # `--placement` of the nodes and the balancer (None: Cohort's default, every node)
        self.placement_args = ["--placement", placement] if placement else []
        self.names = [f"n{i}" for i in range(1, nodes + 1)]
        self.durability = durability

    def http(self, name):
        return self.http_base + int(name[1:])

    def label(self, name):
        return f"cohort-{self.tag}-{name}"

    def node_argv(self, name):
        i = int(name[1:])
        argv = [self.binary, "node", "--name", name, "--http", f"{HOST}:{self.http(name)}",
                "--cluster", f"{HOST}:{self.cluster_base + i}", "--key-file", cohort_keygen(),
                "--durability", self.durability, "--log-level", "warning"] + EVENT_LOOP_ARGS + self.placement_args
        for other in self.names:
            if other != name:
                argv += ["--seed", f"{HOST}:{self.cluster_base + int(other[1:])}"]
        return argv

    def start_node(self, name):
        return spawn(self.label(name), self.node_argv(name), env=self.env)

    def health(self, name):
        try:
            c = http.client.HTTPConnection(HOST, self.http(name), timeout=1)
            c.request("GET", "/health")
            r = c.getresponse(); r.read(); c.close()
            return r.status == 200
        except OSError:
            return False

    def cluster_view(self, name):
        return get_json(self.http(name), "/cluster")[1]

    def sessions(self, name):
        return self.cluster_view(name)["sessions"]

    def all_alive(self, name):
        v = self.cluster_view(name)
        live = {m["name"] for m in v["members"] if m["status"] == "alive" and m["role"] == "node"}
        return set(self.names) <= live

    def up(self):
        for n in self.names:
            self.start_node(n)
        for n in self.names:
            wait_until(f"{self.label(n)} /health", lambda n=n: self.health(n), 30)
        for n in self.names:
            wait_until(f"{self.label(n)} sees all alive", lambda n=n: self.all_alive(n), 30)
        log(f"cohort {self.tag}: {len(self.names)} nodes up ({self.durability}), http {self.http_base + 1}..")

    def start_balancer(self, port, extra=(), suffix="", env=None):
        """`cohort balancer` on PORT, process label `cohort-TAG-balancer` + SUFFIX, with
        ENV added to its environment."""
        argv = [self.binary, "balancer", "--listen", f"{HOST}:{port}", "--log-level", "warning"] + BALANCER_LOOP_ARGS + self.placement_args + list(extra)
        for n in self.names:
            argv += ["--backend", f"{n}={HOST}:{self.http(n)}"]
        spawn(f"cohort-{self.tag}-balancer{suffix}", argv, env=env)
        wait_until("cohort balancer", lambda: tcp_open(port), 15)
        return port

    def start_nginx(self, port, request_ids=True, suffix=""):
        """`cohort config nginx` with the anchor's tuning applied (see bench/README.md);
        process label `nginx-TAG` + SUFFIX. Without REQUEST_IDS, `--no-request-ids`: nginx
        sends no Cohort-Request-Id (as `cohort config nginx` did before 2026-11-28)."""
        prefix = os.path.join(RUN, f"nginx-{self.tag}{suffix}")
        os.makedirs(prefix, exist_ok=True)
        argv = [COHORT, "config", "nginx", "--listen", f"{HOST}:{port}"] + ([] if request_ids else ["--no-request-ids"])
        for n in self.names:
            argv += ["--backend", f"{n}={HOST}:{self.http(n)}"]
        conf = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30).stdout
        conf = tune_nginx(conf)
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(conf)
        run_nginx(f"nginx-{self.tag}{suffix}", prefix, port)
        return port

    def down(self):
        for n in self.names:
            stop(self.label(n))
        stop(f"cohort-{self.tag}-balancer")
        stop(f"cohort-{self.tag}-balancer-norid")
        stop(f"nginx-{self.tag}")
        stop(f"nginx-{self.tag}-norid")

    def pids(self):
        out = {}
        for n in self.names:
            try:
                out[n] = [pid_of(self.label(n))]
            except FileNotFoundError:
                pass
        return out


def tune_nginx(conf):
    """The anchor's nginx.conf keeps 64 idle upstream connections and logs no access;
    `cohort config nginx` keeps 32 and writes a buffered access log. Apply the anchor's
    settings to compare like with like."""
    conf = re.sub(r"access_log [^;]*;", "access_log off;", conf)
    if re.search(r"\n\s*keepalive \d+;", conf):  # `cohort config nginx` emits its own pool size
        conf = re.sub(r"(\n\s*)keepalive \d+;", r"\1keepalive 64;", conf)
    else:
        conf = re.sub(r"(\n(\s*)least_conn;)", r"\1\n\2keepalive 64;", conf)
    if 'proxy_set_header Connection "";' not in conf:
        conf = conf.replace("proxy_http_version 1.1;", "proxy_http_version 1.1;\n            proxy_set_header Connection \"\";")
    assert conf.count("keepalive 64;") >= 2, "nginx config: could not add keepalive"
    return conf


def run_nginx(label, prefix, port):
    """nginx in the foreground with PREFIX/nginx.conf, tracked as LABEL; returns once PORT accepts."""
    spawn(label, ["nginx", "-p", prefix + "/", "-c", os.path.join(prefix, "nginx.conf"), "-e", "stderr", "-g", "daemon off;"])
    wait_until("nginx", lambda: tcp_open(port), 15)


def tcp_open(port):
    import socket
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def build_specs(specs):
    """`LABEL=BINARY[,VAR=VALUE...]` arguments of the A/B helpers -> [(label, absolute binary,
    environment)]."""
    builds = []
    for spec in specs:
        label, rest = spec.split("=", 1)
        binary, *pairs = rest.split(",")
        builds.append((label, os.path.abspath(binary), dict(p.split("=", 1) for p in pairs)))
    return builds


def cohort_make_pool(port, n, out, payload=1024):
    """n sessions, each created by POST /api/payload?bytes=payload on a fresh connection
    (so the balancer spreads them); writes their ids (cookie values), one a line."""
    ids = []
    for _ in range(n):
        c = Client(port)
        st, body, h, _ = c.req("POST", f"/api/payload?bytes={payload}")
        c.close()
        assert st == 200, (st, body)
        d = json.loads(body)
        assert d["bytes"] == payload, d
        ids.append(d["id"])
    with open(out, "w") as f:
        f.write("\n".join(ids) + "\n")
    return by_route(ids)


def by_route(ids):
    by = {}
    for i in ids:
        r = i.rsplit(".", 1)[1]
        by[r] = by.get(r, 0) + 1
    return by


# ---------------------------------------------------------------- Tomcat (anchor harness)

TC_CONF = os.path.join(BENCH, "tomcat", "conf")
TC_APP = os.path.join(BENCH, "tomcat", "webapp", "app")


class TomcatCluster:
    """Tomcat 10.1 nodes as in the anchor's scripts/setup.sh + node.sh: one CATALINA_BASE
    per node under RUN/tomcat-TAG/nodeI, http HTTP_BASE+i, shutdown 8100+i, Tribes 4000+i
    (static membership 4001..4004, from the anchor's cluster-static.xml.in, or the
    cluster's own members when its indices go past 4), DeltaManager or BackupManager."""

    def __init__(self, tag, indices, membership="static", send_options=8, binder=True, transport_attrs="",
                 http_base=8080, manager="delta"):
        self.tag, self.indices = tag, list(indices)
        self.membership, self.send_options, self.binder = membership, send_options, binder
        self.transport_attrs = transport_attrs
        self.http_base = http_base
        # "delta": the anchor's DeltaManager (every node holds every session); "backup":
        # BackupManager (a primary and one backup per session), same cluster block otherwise
        self.manager = manager
        self.root = os.path.join(RUN, f"tomcat-{tag}")

    def http(self, i):
        return self.http_base + i

    def base(self, i):
        return os.path.join(self.root, f"node{i}")

    def label(self, i):
        return f"tomcat-{self.tag}-node{i}"

    def setup(self):
        for i in self.indices:
            b = self.base(i)
            shutil.rmtree(b, ignore_errors=True)
            for d in ("conf", "logs", "temp", "work", "webapps", "lib"):
                os.makedirs(os.path.join(b, d), exist_ok=True)
            for f in ("catalina.properties", "context.xml", "logging.properties", "web.xml",
                      "jaspic-providers.xml", "tomcat-users.xml"):
                shutil.copy(os.path.join(CATALINA_HOME, "etc", f), os.path.join(b, "conf", f))
            cl = ""
            if self.membership != "none":
                cl = open(os.path.join(TC_CONF, f"cluster-{self.membership}.xml.in")).read()
                cl = (cl.replace("@TRIBES_PORT@", str(4000 + i)).replace("@SEND_OPTIONS@", str(self.send_options))
                      .replace("@BINDER@", "true" if self.binder else "false")
                      .replace("@TRANSPORT_ATTRS@", self.transport_attrs).replace("@MANAGER_ATTRS@", ""))
                cl = self._members_and_manager(cl)
            t = open(os.path.join(TC_CONF, "server.xml.in")).read()
            t = (t.replace("@SHUTDOWN_PORT@", str(8100 + i)).replace("@HTTP_PORT@", str(self.http(i)))
                 .replace("@ROUTE@", f"node{i}").replace("@CLUSTER@", cl))
            open(os.path.join(b, "conf", "server.xml"), "w").write(t)
            shutil.copytree(TC_APP, os.path.join(b, "webapps", "app"))

    def _members_and_manager(self, cl):
        """The anchor's static member list names Tribes ports 4001-4004; a cluster on other
        indices lists its own members instead (the local one included, as the anchor's does).
        With manager="backup", BackupManager replaces DeltaManager."""
        own_members = any(i > 4 for i in self.indices)
        if own_members:
            members = "".join(
                f'\n            <Member className="org.apache.catalina.tribes.membership.StaticMember"\n'
                f'                    host="127.0.0.1" port="{4000 + i}" uniqueId="{{{",".join(["0"] * 15)},{i}}}"/>'
                for i in self.indices)
            cl = re.sub(r'(<Membership className="[^"]*">).*?(\n\s*</Membership>)', lambda m: m.group(1) + members + m.group(2),
                        cl, flags=re.S)
        if self.manager == "backup":
            cl = re.sub(r'<Manager className="org.apache.catalina.ha.session.DeltaManager".*?/>',
                        '<Manager className="org.apache.catalina.ha.session.BackupManager"\n'
                        '                 notifyListenersOnReplication="true"/>', cl, flags=re.S)
        assert not own_members or cl.count("<Member ") == len(self.indices), cl
        return cl

    def start_nginx_for(self, port):
        """nginx on PORT in front of this cluster's nodes, written like the anchor's
        conf/nginx.conf (route map on the JSESSIONID suffix, the other nodes as backup
        servers, keepalive 64, no access log) for any set of nodes."""
        prefix = os.path.join(RUN, f"nginx-{self.tag}")
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
        servers = [f"127.0.0.1:{self.http(i)}" for i in self.indices]
        ups = ["    upstream tc_all { " + " ".join(f"server {s};" for s in servers) + " keepalive 64; }"]
        maps = []
        for k, i in enumerate(self.indices):
            order = servers[k:] + servers[:k]
            ups.append(f"    upstream tc_node{i} {{ server {order[0]}; "
                       + " ".join(f"server {s} backup;" for s in order[1:]) + " keepalive 64; }")
            maps.append(f"        ~\\.node{i}$   tc_node{i};")
        anchor = open(os.path.join(TC_CONF, "nginx.conf")).read()
        conf = re.sub(r"\n    upstream tc_all.*?\n\n    map", "\n" + "\n".join(ups) + "\n\n    map", anchor, flags=re.S)
        conf = re.sub(r"(default\s+tc_all;\n).*?(\n    \})", lambda m: m.group(1) + "\n".join(maps) + m.group(2), conf, flags=re.S)
        conf = conf.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
        assert conf.count("upstream tc_") == len(self.indices) + 1 and f":{port};" in conf, conf
        with open(os.path.join(prefix, "nginx.conf"), "w") as f:
            f.write(conf)
        run_nginx(f"nginx-{self.tag}", prefix, port)
        return port

    def env(self, i):
        b = self.base(i)
        return {"CATALINA_HOME": CATALINA_HOME, "CATALINA_BASE": b, "CATALINA_PID": os.path.join(b, "tomcat.pid"),
                "CATALINA_OPTS": f"-Djava.net.preferIPv4Stack=true -DjvmRoute=node{i}"}

    def start_node(self, i):
        env = self.env(i)
        if os.path.exists(env["CATALINA_PID"]):
            os.remove(env["CATALINA_PID"])
        subprocess.run([os.path.join(CATALINA_HOME, "bin", "catalina.sh"), "start"], env={**os.environ, **env},
                       check=True, capture_output=True, timeout=60)
        pid = int(open(env["CATALINA_PID"]).read().strip())
        track(self.label(i), pid)
        return pid

    def stats(self, i, attrs="activeSessions,sessionCounter"):
        st, body, _, _ = one_shot(self.http(i), "GET", "/app/stats.jsp?attrs=" + attrs, timeout=10)
        return dict(kv.split("=", 1) for kv in body.split() if "=" in kv)

    def up_http(self, i):
        try:
            st, _, _, _ = one_shot(self.http(i), "GET", "/app/stats.jsp", timeout=2)
            return st == 200
        except OSError:
            return False

    def up(self):
        self.setup()
        for i in self.indices:   # one after another, like the anchor's cluster.sh
            self.start_node(i)
            wait_until(f"tomcat node{i}", lambda i=i: self.up_http(i), 120, 0.2)
        log(f"tomcat {self.tag}: nodes {self.indices} up (membership={self.membership}, sendOptions={self.send_options})")

    def start_nginx(self, port=8080):
        """The anchor's conf/nginx.conf (nginx on 127.0.0.1:8080 -> 8081..8083)."""
        prefix = os.path.join(RUN, f"nginx-{self.tag}")
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
        shutil.copy(os.path.join(TC_CONF, "nginx.conf"), os.path.join(prefix, "nginx.conf"))
        run_nginx(f"nginx-{self.tag}", prefix, port)

    def down(self):
        stop(f"nginx-{self.tag}")
        threads = [threading.Thread(target=stop, args=(self.label(i), signal.SIGTERM, 30)) for i in self.indices]
        for t in threads: t.start()
        for t in threads: t.join()

    def pids(self):
        out = {}
        for i in self.indices:
            try:
                out[f"node{i}"] = [pid_of(self.label(i))]
            except FileNotFoundError:
                pass
        return out


def one_shot(port, method, path, headers=None, timeout=5.0):
    c = Client(port, timeout)
    try:
        return c.req(method, path, headers)
    finally:
        c.close()


def tomcat_make_pool(port, n, out):
    """The anchor's make_pool.py: n sessions from count1k.jsp (1 KB payload), fresh connection each."""
    rx = re.compile(r"id=(\S+) count=(\S+) node=(\S+)")
    ids = []
    for _ in range(n):
        st, body, h, _ = one_shot(port, "GET", "/app/count1k.jsp")
        assert st == 200, (st, body)
        ids.append(rx.search(body).group(1))
    with open(out, "w") as f:
        f.write("\n".join(ids) + "\n")
    return by_route(ids)


# ---------------------------------------------------------------- measurement helpers

def cpu_s(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICK
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    return out


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def my_pids():
    pids = set()
    if os.path.isdir(PIDS):
        for f in os.listdir(PIDS):
            try:
                p = int(open(os.path.join(PIDS, f)).read().strip())
                pids.add(p)
                pids.update(children(p))
            except (ValueError, FileNotFoundError):
                pass
    return pids


def _cpu_total():
    """Busy jiffies of the whole machine (/proc/stat, all but idle and iowait)."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(f) - f[3] - f[4]


def foreign_load(sample_s=1.0):
    """CPU use by everything this benchmark did not start, over sample_s, in cores
    (machine busy time from /proc/stat minus the benchmark's own processes, so short-lived
    compiler processes count too); the busiest long-lived foreign processes; load average."""
    def snap():
        d = {}
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    s = open(f"/proc/{p}/stat").read()
                    comm = s[s.index("(") + 1:s.rindex(")")]
                    f = s.rsplit(")", 1)[1].split()
                    d[int(p)] = (comm, int(f[11]) + int(f[12]))
                except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                    pass
        return d
    mine = my_pids() | {os.getpid(), os.getppid()}
    a, ta = snap(), _cpu_total()
    time.sleep(sample_s)
    b, tb = snap(), _cpu_total()
    own = sum(t - a[p][1] for p, (c, t) in b.items() if p in mine and p in a)
    use = {}
    for p, (comm, t) in b.items():
        if p in mine:
            continue
        dt = (t - a.get(p, (comm, t))[1]) / TICK / sample_s
        if dt > 0.01:
            use[comm] = use.get(comm, 0) + dt
    top = sorted(use.items(), key=lambda kv: -kv[1])[:3]
    return {"foreign_cores": round(max(0, tb - ta - own) / TICK / sample_s, 2),
            "foreign_top": [[c, round(v, 2)] for c, v in top], "loadavg1": os.getloadavg()[0]}


def to_ms(s):
    v = float(re.match(r"[\d.]+", s).group())
    if s.endswith("us"):
        return v / 1000
    if s.endswith("ms"):
        return v
    if s.endswith("s"):
        return v * 1000
    return v


def wrk(url, pool, cookie, method, conns, dur, threads=2, request_ids=False):
    lua = os.path.join(BENCH, "wrk", "pool.lua")
    cmd = ["timeout", str(dur + 30), "wrk", f"-t{threads}", f"-c{conns}", f"-d{dur}s", "--latency",
           "-s", lua, url, "--", pool, cookie, method] + (["rid"] if request_ids else [])
    o = subprocess.run(cmd, capture_output=True, text=True, timeout=dur + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", o)
    if not m:
        raise RuntimeError("wrk failed:\n" + o)
    r = {"rps": float(m.group(1))}
    for p in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{p}(?:\.000)?%\s+(\S+)", o, re.M)
        r[f"p{p}_ms"] = round(to_ms(m.group(1)), 3)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", o)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", o)
    r["socket_errors"] = m.group(1) if m else ""
    r["requests"] = int(re.search(r"(\d+) requests in", o).group(1))
    return r


def measured_wrk(url, pool, cookie, method, conns, dur, pids, created):
    """One recorded run: the foreign CPU of the second before it, then wrk, with the CPU
    seconds each group of PIDS ({name: [pid, ...]}) used during it and the sessions created
    during it (CREATED(): a count that grows with every new session)."""
    load = foreign_load(1.0)
    before = {k: sum(cpu_s(p) for p in v) for k, v in pids.items()}
    s0 = created()
    r = wrk(url, pool, cookie, method, conns, dur)
    after = {k: sum(cpu_s(p) for p in v) for k, v in pids.items()}
    r.update({"sessions_created_during_run": created() - s0,
              "cpu_s": {k: round(after[k] - before[k], 2) for k in pids}, **load})
    return r


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(xs):
    xs = sorted(xs)
    if not xs:
        return {}
    return {"n": len(xs), "min": xs[0], "p50": pct(xs, 50), "p90": pct(xs, 90), "p99": pct(xs, 99), "max": xs[-1],
            "mean": statistics.mean(xs)}


def med_spread(xs, fmt="{:.0f}"):
    """'median (min–max)'."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def machine():
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = re.search(r"Model name:\s+(.*)", lscpu)
    mem = int(open("/proc/meminfo").readline().split()[1]) // 1024
    def ver(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    return {"nproc": os.cpu_count(), "cpu": model.group(1) if model else "?", "mem_mb": mem,
            "kernel": os.uname().release, "nginx": ver(["nginx", "-v"]), "wrk": ver(["wrk", "-v"]),
            "java": ver(["java", "-version"]), "cohort": COHORT, "cohort_event_loops": EVENT_LOOPS or "per core",
            "cohort_balancer_event_loops": BALANCER_LOOPS or "per core",
            "git": subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h %s"], capture_output=True, text=True).stdout.strip()}


def save(name, data):
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    path = os.path.join(BENCH, "results", name)
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
    log("wrote", path)
