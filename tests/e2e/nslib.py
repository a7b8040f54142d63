"""Network namespaces, processes and HTTP helpers for nmid's end-to-end suite.

Network safety is enforced here, in one place:
  * every command that reads or changes network state (ip, iptables*, nft, sysctl, conntrack,
    tc, curl, wrk, ...) runs through `Topology.nsexec`, which always prefixes
    `ip netns exec <ns>` and refuses a namespace this process did not create;
  * `host_run` (commands in the machine's own namespace, e.g. npm) refuses every such tool;
  * namespaces are named `nmide2e<pid>-<role>`; the ones left by a crashed run of this suite
    (prefix match, owning pid gone) are deleted at start, and this run's are deleted by
    `Topology.destroy` (try/finally, atexit and SIGTERM/SIGINT).
`self_check()` proves the guards before anything touches the network.
"""

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse

PREFIX = "nmide2e"
NETNS_DIR = "/run/netns"

# Tools that read or change network state, or send traffic: never run outside our namespaces.
NETWORK_TOOLS = {
    "ip", "iptables", "iptables-save", "iptables-restore", "iptables-legacy",
    "iptables-legacy-save", "iptables-legacy-restore", "iptables-nft", "iptables-nft-save",
    "iptables-nft-restore", "ip6tables", "nft", "sysctl", "conntrack", "tc", "bridge", "curl",
    "wrk", "nmid", "imds-emulator", "nginx", "ss",
}

# The addresses of the topology.
NODE_IP = "10.200.0.1"          # bridge of the node namespace: the pods' gateway
POD_SUBNET = "10.200.0.0/24"
NODE_UPLINK_IP = "10.201.0.1"   # node side of the link to the metadata host
MDH_IP = "10.201.0.2"           # metadata host
METADATA_IP = "169.254.169.254"
METADATA_PORT = 80


class SafetyError(AssertionError):
    pass


def _tool(argv):
    return os.path.basename(argv[0])


def host_run(argv, **kwargs):
    """Runs a command in the machine's own namespaces. Refuses network tools."""
    if _tool(argv) in NETWORK_TOOLS or _tool(argv).startswith(("iptables", "ip6tables")):
        raise SafetyError(f"refusing to run {argv[0]} outside a test namespace")
    return subprocess.run(argv, **kwargs)


def _netns_run(argv):
    """`ip netns add|del|pids NAME` for names of this suite only (the only `ip` calls that do
    not run inside a namespace: they create, delete or list namespaces, nothing else)."""
    if argv[:2] != ["ip", "netns"] or argv[2] not in ("add", "del", "pids") or len(argv) != 4:
        raise SafetyError(f"not a namespace operation: {argv}")
    if not argv[3].startswith(PREFIX):
        raise SafetyError(f"namespace {argv[3]} is not one of this suite's")
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def delete_leftovers(log=print):
    """Deletes namespaces left by a crashed run of this suite: prefix `nmide2e<pid>-` where
    <pid> no longer runs. Processes still inside them were started by that run: killed by pid."""
    if not os.path.isdir(NETNS_DIR):
        return
    for name in sorted(os.listdir(NETNS_DIR)):
        m = re.fullmatch(PREFIX + r"(\d+)-[a-z0-9]+", name)
        if not m or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        pids = _netns_run(["ip", "netns", "pids", name]).stdout.split()
        for p in pids:
            _kill_pid(int(p))
        _netns_run(["ip", "netns", "del", name])
        log(f"deleted leftover namespace {name} (killed {len(pids)} processes in it)")


class Proc:
    """A process this run started, with its log file. Only ever signalled by its own pid."""

    def __init__(self, name, popen, log_path):
        self.name, self.popen, self.log_path = name, popen, log_path

    @property
    def pid(self):
        return self.popen.pid

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def signal(self, sig):
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def wait(self, timeout):
        return self.popen.wait(timeout=timeout)

    def alive(self):
        return self.popen.poll() is None

    def stop(self, timeout=5):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


class Topology:
    """Namespaces: node (bridge 10.200.0.1/24, ip_forward=1), pods pod1..podN on the bridge
    (10.200.0.11, .12, ...; default route via the node) and mdh, the metadata host reached by
    routing (10.201.0.2; 169.254.169.254/32 on its loopback; default route back via the node)."""

    def __init__(self, pods=3, workdir=None, log=print):
        self.log = log
        self.run_id = f"{PREFIX}{os.getpid()}"
        self.owned = []
        self.procs = []
        self.workdir = workdir or tempfile.mkdtemp(prefix="nmid-e2e-")
        self.node = self._name("node")
        self.mdh = self._name("mdh")
        self.pods = [self._name(f"pod{i + 1}") for i in range(pods)]
        self.pod_ips = [f"10.200.0.{11 + i}" for i in range(pods)]
        self._destroyed = False

    def _name(self, role):
        return f"{self.run_id}-{role}"

    # ---- the only ways to run commands -------------------------------------------------------

    def _check_ns(self, ns):
        if ns not in self.owned or not ns.startswith(self.run_id + "-"):
            raise SafetyError(f"namespace {ns!r} was not created by this run")

    def nsexec(self, ns, argv, check=True, timeout=60, **kwargs):
        """Runs argv inside namespace `ns` (one of ours), returning CompletedProcess (text)."""
        self._check_ns(ns)
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        cp = subprocess.run(["ip", "netns", "exec", ns, *argv], timeout=timeout, **kwargs)
        if check and cp.returncode != 0:
            raise RuntimeError(f"[{ns}] {' '.join(argv)} -> {cp.returncode}\n{cp.stdout}{cp.stderr}")
        return cp

    def spawn(self, ns, name, argv, env=None, cpu=None):
        """Starts argv inside `ns` in the background (`ip netns exec` execs in place, so the pid
        is argv's own), stdout+stderr to <workdir>/<name>.log."""
        self._check_ns(ns)
        log_path = os.path.join(self.workdir, f"{name}.log")
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        f = open(log_path, "ab")
        try:
            popen = subprocess.Popen(["ip", "netns", "exec", ns, *pin, *argv], stdout=f,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        finally:
            f.close()
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    # ---- life cycle ------------------------------------------------------------------------

    def create(self):
        atexit.register(self.destroy)
        for ns in [self.node, self.mdh, *self.pods]:
            cp = _netns_run(["ip", "netns", "add", ns])
            if cp.returncode != 0:
                raise RuntimeError(f"ip netns add {ns}: {cp.stderr}")
            self.owned.append(ns)
            self.nsexec(ns, ["ip", "link", "set", "lo", "up"])
        n = self.node
        self.nsexec(n, ["ip", "link", "add", "br0", "type", "bridge"])
        self.nsexec(n, ["ip", "addr", "add", f"{NODE_IP}/24", "dev", "br0"])
        self.nsexec(n, ["ip", "link", "set", "br0", "up"])
        for i, (pod, ip) in enumerate(zip(self.pods, self.pod_ips)):
            veth = f"vp{i + 1}"
            self.nsexec(n, ["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                            "netns", pod])
            self.nsexec(n, ["ip", "link", "set", veth, "master", "br0", "up"])
            self.nsexec(pod, ["ip", "addr", "add", f"{ip}/24", "dev", "eth0"])
            self.nsexec(pod, ["ip", "link", "set", "eth0", "up"])
            self.nsexec(pod, ["ip", "route", "add", "default", "via", NODE_IP])
        self.nsexec(n, ["ip", "link", "add", "vmd", "type", "veth", "peer", "name", "eth0",
                        "netns", self.mdh])
        self.nsexec(n, ["ip", "addr", "add", f"{NODE_UPLINK_IP}/30", "dev", "vmd"])
        self.nsexec(n, ["ip", "link", "set", "vmd", "up"])
        self.nsexec(self.mdh, ["ip", "addr", "add", f"{MDH_IP}/30", "dev", "eth0"])
        self.nsexec(self.mdh, ["ip", "link", "set", "eth0", "up"])
        self.nsexec(self.mdh, ["ip", "addr", "add", f"{METADATA_IP}/32", "dev", "lo"])
        self.nsexec(self.mdh, ["ip", "route", "add", "default", "via", NODE_UPLINK_IP])
        self.nsexec(n, ["ip", "route", "add", f"{METADATA_IP}/32", "via", MDH_IP])
        self.nsexec(n, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        return self

    def destroy(self):
        if self._destroyed:
            return
        self._destroyed = True
        for p in reversed(self.procs):
            if p.alive():
                p.popen.kill()
                try:
                    p.popen.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        for ns in reversed(self.owned):
            # Anything still inside is ours (started by this run through nsexec/spawn).
            for pid in _netns_run(["ip", "netns", "pids", ns]).stdout.split():
                _kill_pid(int(pid))
            cp = _netns_run(["ip", "netns", "del", ns])
            if cp.returncode != 0:
                self.log(f"warning: ip netns del {ns}: {cp.stderr.strip()}")
        self.owned.clear()
        if os.environ.get("NMID_E2E_KEEP_LOGS") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def sysctl(self, ns, key, value):
        self.nsexec(ns, ["sysctl", "-qw", f"{key}={value}"])

    def read_sysctl(self, ns, key):
        return self.nsexec(ns, ["sysctl", "-n", key]).stdout.strip()

    # ---- HTTP from inside a namespace -------------------------------------------------------

    def http(self, ns, url, headers=None, timeout=3.0, connect_timeout=None, method="GET"):
        """curl inside `ns`. Returns (status, body, curl_exit): status 0 when no answer."""
        argv = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-m", str(timeout),
                "--noproxy", "*", "-X", method]
        if connect_timeout is not None:
            argv += ["--connect-timeout", str(connect_timeout)]
        for k, v in (headers or {}).items():
            argv += ["-H", f"{k}: {v}"]
        cp = self.nsexec(ns, argv + [url], check=False, timeout=timeout + 10)
        body, _, code = cp.stdout.rpartition("\n")
        return int(code or 0), body, cp.returncode

    def json_get(self, ns, url):
        status, body, rc = self.http(ns, url)
        if status != 200:
            raise RuntimeError(f"GET {url} in {ns}: status {status} curl {rc}: {body}")
        return json.loads(body)


def token_url(resource="https://vault.azure.net", client_id=None, host=METADATA_IP, port=None):
    q = {"api-version": "2018-02-01", "resource": resource}
    if client_id:
        q["client_id"] = client_id
    hostport = host if port is None else f"{host}:{port}"
    return f"http://{hostport}/metadata/identity/oauth2/token?{urllib.parse.urlencode(q)}"


def wait_until(predicate, deadline_s, what, interval=0.05):
    """Polls predicate() until truthy or the deadline; returns its value or raises."""
    end = time.monotonic() + deadline_s
    last = None
    while True:
        try:
            last = predicate()
        except Exception as e:  # noqa: BLE001 - shown on timeout
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() >= end:
            raise TimeoutError(f"timed out after {deadline_s}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def parse_prometheus(text):
    """{(name, frozenset(labels)): value} from a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?", line)
        if not m:
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric_sum(metrics, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in metrics.items() if n == name and want <= set(ls))


def self_check():
    """Proves the guards before anything touches the network: raises if they are broken."""
    for argv in (["iptables", "-t", "nat", "-S"], ["/usr/sbin/iptables-nft", "-S"],
                 ["ip", "route"], ["sysctl", "-a"], ["curl", "http://169.254.169.254/"],
                 ["iptables-legacy-save"]):
        try:
            host_run(argv)
        except SafetyError:
            continue
        raise SafetyError(f"host_run let {argv} through")
    t = Topology(pods=0)
    for ns in ("", "default", t.node, f"{PREFIX}1-node"):
        try:
            t.nsexec(ns, ["iptables", "-S"])
        except SafetyError:
            continue
        raise SafetyError(f"nsexec accepted a namespace this run did not create: {ns!r}")
    for argv in (["ip", "netns", "del", "default"], ["ip", "netns", "exec", "x", "iptables"],
                 ["ip", "route", "add", "x"]):
        try:
            _netns_run(argv)
        except SafetyError:
            continue
        raise SafetyError(f"_netns_run let {argv} through")
    shutil.rmtree(t.workdir, ignore_errors=True)


def install_signal_cleanup():
    """SIGTERM/SIGINT (ctest timeout, Ctrl-C) unwind through finally blocks and atexit."""
    def handler(signo, _frame):
        raise SystemExit(128 + signo)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def skip_reason():
    """Why the suite cannot run here (exit 77), or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables inside them)"
    for tool in ("ip", "iptables-legacy", "iptables-nft", "curl", "sysctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install-deps.sh)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    cp = _netns_run(["ip", "netns", "add", probe])
    if cp.returncode != 0:
        return f"cannot create a network namespace: {cp.stderr.strip()}"
    _netns_run(["ip", "netns", "del", probe])
    return None
