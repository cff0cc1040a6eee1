"""The test network: K hosts as network namespaces on one bridge, and the nftables
rules that inject loss and partitions.

Layout (nothing is created in the root namespace: no link, no address, no route, no
rule; every name starts with the run's prefix, `rchaos-` by default):

    rchaos-sw            the switch: bridge br0, one port hK per host, no address
    rchaos-h1 .. hK      a host each: eth0 (veth to the switch port), lo,
                         198.18.100.K/24, no default route, no rules

With the DNS scenarios (`--dns`, see harness/dns.py) there are more namespaces on the
same bridge, still no node in them at first:

    rchaos-s1 .. sN      spare hosts, 198.18.100.201..: where a recreated pod comes back
                         with a new address (same layout as a host)
    rchaos-dns           198.18.100.253: dnsmasq, the cluster's DNS server

and every host and spare gets /etc/netns/rchaos-*/resolv.conf naming that server, which
`ip netns exec` bind-mounts over /etc/resolv.conf for the processes it starts (only
those: the root namespace's resolver is untouched). `destroy` removes those files, and
/etc/netns itself if this run created it.

198.18.100.0/24 is inside 198.18.0.0/15 (RFC 2544, benchmarking). With no default route
in any host and no uplink on the bridge, nothing can leave the bridge. Every host gets
a permanent neighbour entry for every other, so a host whose link is down is pure
silence to its peers (no ARP failure, hence no locally generated "host unreachable").

Every rule lives in the switch's namespace (table `bridge rchaos`, see below):
deleting the namespaces deletes the rules, links and addresses with them.
"""

import json
import os
import subprocess
import time

TABLE = "rchaos"
SPARE_BASE = 200  # spare host j is 198.18.100.(200 + j), namespace rchaos-sJ
DNS_HOST = 253  # the DNS server's namespace rchaos-dns, 198.18.100.253
NETNS_ETC = "/etc/netns"


def run(argv, timeout=20, check=True, stdin=None):
    """Runs a command, bounded in time; raises with its stderr when it fails."""
    r = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=timeout
    )
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip() or r.returncode}")
    return r.stdout


def our_namespaces(prefix):
    """Namespaces whose name starts with `prefix` (ours, by construction)."""
    out = run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(prefix)]


def remove_netns_etc(prefix, remove_dir=False, log=print):
    """Removes /etc/netns/PREFIX* (the per-namespace resolv.conf files `ip netns exec`
    bind-mounts), and /etc/netns itself when `remove_dir` and it is left empty."""
    if os.path.isdir(NETNS_ETC):
        for name in sorted(os.listdir(NETNS_ETC)):
            if name.startswith(prefix):
                path = os.path.join(NETNS_ETC, name)
                for fn in os.listdir(path):
                    os.remove(os.path.join(path, fn))
                os.rmdir(path)
                log(f"removed {path}")
        if remove_dir and not os.listdir(NETNS_ETC):
            os.rmdir(NETNS_ETC)


def destroy_namespaces(prefix, log=print):
    """Kills every process inside our namespaces (by pid) and deletes the namespaces.
    Deleting a namespace deletes its links (both ends of a veth) and its nftables
    tables. Safe to call at any time, any number of times."""
    for ns in our_namespaces(prefix):
        pids = run(["ip", "netns", "pids", ns], check=False).split()
        for pid in pids:
            try:
                os.kill(int(pid), 18)  # SIGCONT: a stopped process must be able to die
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        # Bounded: processes die at once after SIGKILL.
        for _ in range(50):
            if not run(["ip", "netns", "pids", ns], check=False).split():
                break
            time.sleep(0.1)
        run(["ip", "netns", "del", ns], check=False)
        log(f"removed namespace {ns}")


class Net:
    def __init__(self, prefix, hosts, subnet="198.18.100", spares=0, dns=False):
        if not 2 <= hosts <= SPARE_BASE:
            raise ValueError(f"hosts must be in 2..{SPARE_BASE}")
        if not 0 <= spares <= 50:
            raise ValueError("spares must be in 0..50")
        self.prefix = prefix
        self.hosts = hosts
        self.spares = spares
        self.dns = dns
        self.subnet = subnet
        self.switch = prefix + "sw"
        self.macs = {}
        self.made_netns_etc = False

    # -- names -------------------------------------------------------------------
    # Hosts are numbers: 1..K the hosts, SPARE_BASE + j the spares, DNS_HOST the DNS
    # server; the number is the last octet of the address.
    def port(self, h):
        """The host's name on the switch (and in its namespace's name)."""
        if h == DNS_HOST:
            return "dns"
        if h > SPARE_BASE:
            return f"s{h - SPARE_BASE}"
        return f"h{h}"

    def ns(self, h):
        return f"{self.prefix}{self.port(h)}"

    def addr(self, h):
        return f"{self.subnet}.{h}"

    def all_hosts(self):
        """The hosts that run a node in every scenario (not the spares, not the DNS)."""
        return list(range(1, self.hosts + 1))

    def spare_hosts(self):
        return [SPARE_BASE + j for j in range(1, self.spares + 1)]

    def every_host(self):
        """Every namespace with an address: hosts, spares, the DNS server."""
        return self.all_hosts() + self.spare_hosts() + ([DNS_HOST] if self.dns else [])

    def exec_argv(self, h, argv):
        return ["ip", "netns", "exec", self.ns(h)] + list(argv)

    # -- building and tearing down -------------------------------------------------
    def _sysctl(self, ns, key, value):
        path = "/proc/sys/" + key.replace(".", "/")
        run(["ip", "netns", "exec", ns, "sh", "-c", f"echo {value} > {path}"])

    def create(self):
        run(["ip", "netns", "add", self.switch])
        self._sysctl(self.switch, "net.ipv6.conf.all.disable_ipv6", 1)
        self._sysctl(self.switch, "net.ipv6.conf.default.disable_ipv6", 1)
        run(["ip", "-n", self.switch, "link", "add", "br0", "type", "bridge", "stp_state", "0"])
        run(["ip", "-n", self.switch, "link", "set", "br0", "up"])
        if self.dns:
            self._write_resolv_confs()
        for h in self.every_host():
            ns = self.ns(h)
            run(["ip", "netns", "add", ns])
            self._sysctl(ns, "net.ipv6.conf.all.disable_ipv6", 1)
            self._sysctl(ns, "net.ipv6.conf.default.disable_ipv6", 1)
            run(["ip", "-n", ns, "link", "add", "eth0", "type", "veth",
                 "peer", "name", self.port(h), "netns", self.switch])
            run(["ip", "-n", self.switch, "link", "set", self.port(h), "master", "br0"])
            run(["ip", "-n", self.switch, "link", "set", self.port(h), "up"])
            run(["ip", "-n", ns, "addr", "add", f"{self.addr(h)}/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            info = json.loads(run(["ip", "-n", ns, "-j", "link", "show", "eth0"]))
            self.macs[h] = info[0]["address"]
        self._base_rules()
        for h in self.every_host():
            for j in self.every_host():
                if j != h:
                    run(["ip", "-n", self.ns(h), "neigh", "replace", self.addr(j),
                         "lladdr", self.macs[j], "dev", "eth0", "nud", "permanent"])

    def check_isolated(self):
        """Asserts what the module docstring promises: no host has a route other than
        its own /24, and the switch has no address."""
        for h in self.every_host():
            routes = json.loads(run(["ip", "-n", self.ns(h), "-j", "route", "show"]))
            for r in routes:
                if r.get("dst") != f"{self.subnet}.0/24":
                    raise RuntimeError(f"{self.ns(h)}: unexpected route {r}")
        addrs = json.loads(run(["ip", "-n", self.switch, "-j", "addr", "show"]))
        for link in addrs:
            for a in link.get("addr_info", []):
                if a.get("family") == "inet" and not a["local"].startswith("127."):
                    raise RuntimeError(f"{self.switch}: unexpected address {a['local']}")

    def destroy(self, log=print):
        destroy_namespaces(self.prefix, log)
        remove_netns_etc(self.prefix, remove_dir=self.made_netns_etc, log=log)

    def _write_resolv_confs(self):
        """/etc/netns/NS/resolv.conf for every host and spare: the DNS namespace's
        server only (glibc caches nothing without nscd: every lookup asks it)."""
        if not os.path.isdir(NETNS_ETC):
            os.makedirs(NETNS_ETC)
            self.made_netns_etc = True
        for h in self.all_hosts() + self.spare_hosts():
            d = os.path.join(NETNS_ETC, self.ns(h))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "resolv.conf"), "w") as fh:
                fh.write(f"# rumor chaos harness ({self.ns(h)}); removed with the namespace\n"
                         f"nameserver {self.addr(DNS_HOST)}\noptions timeout:1 attempts:2\n")

    # -- nftables, on the switch ------------------------------------------------------
    # Faults are applied where the wire is, not in the hosts: a datagram dropped by a
    # host's own output hook fails its sendto() with EPERM, which tells the sender
    # something a real lossy or cut network never would (memberlist, for one, then
    # skips the probe). On the switch, a drop is silence to both ends. One table,
    # `bridge rchaos`, in the switch namespace; both chains are rebuilt atomically on
    # every change. Only IPv4 is filtered (neighbours are static, so no ARP flows).
    def _nft(self, script):
        run(["ip", "netns", "exec", self.switch, "nft", "-f", "-"], stdin=script)

    def _base_rules(self):
        self.loss = {h: (0.0, 0.0) for h in self.all_hosts()}  # host -> (ingress %, egress %)
        self.cuts = set()  # (from host, to host) pairs dropped
        self._nft(f"""
table bridge {TABLE} {{
  chain cut {{ }}
  chain loss {{ }}
  chain forward {{
    type filter hook forward priority 0; policy accept;
    ether type != ip accept
    jump cut
    jump loss
  }}
}}
""")

    def _apply(self):
        lines = [f"flush chain bridge {TABLE} cut", f"flush chain bridge {TABLE} loss"]
        for src in self.all_hosts():
            dsts = sorted(d for (s, d) in self.cuts if s == src)
            if dsts:
                names = ", ".join(f'"h{d}"' for d in dsts)
                lines.append(f'add rule bridge {TABLE} cut iifname "h{src}" oifname {{ {names} }} drop')
        for h, (ing, egr) in sorted(self.loss.items()):
            # Leaving host h = entering the switch from its port; entering h = leaving
            # the switch through it. Each rule draws its own random number.
            for meta, pct in (("iifname", egr), ("oifname", ing)):
                n = int(round(pct * 100))
                if n > 0:
                    lines.append(f'add rule bridge {TABLE} loss {meta} "h{h}" '
                                 f"numgen random mod 10000 < {n} drop")
        self._nft("\n".join(lines) + "\n")

    def set_loss(self, h, ingress_pct, egress_pct):
        """Drops each datagram entering (leaving) host h with the given probability,
        in percent, in steps of 0.01 %."""
        self.loss[h] = (ingress_pct, egress_pct)
        self._apply()

    def partition(self, side, one_way=False):
        """Cuts `side` off from the rest. One-way: only datagrams from `side` to the
        rest are dropped (the side still hears the rest)."""
        side = set(side)
        rest = set(self.all_hosts()) - side
        self.cuts = {(s, r) for s in side for r in rest}
        if not one_way:
            self.cuts |= {(r, s) for s in side for r in rest}
        self._apply()

    def heal(self):
        self.cuts = set()
        self._apply()

    def set_link(self, h, up):
        """The switch port of host h: down is a pulled cable (the host falls silent)."""
        run(["ip", "-n", self.switch, "link", "set", self.port(h), "up" if up else "down"])

    def reset(self, loss_pct):
        """Back to the baseline between scenarios: every link up, no cut, base loss."""
        for h in self.all_hosts() + self.spare_hosts():
            self.set_link(h, True)
        self.cuts = set()
        self.loss = {h: (loss_pct, loss_pct) for h in self.all_hosts()}
        self._apply()

    def rules_text(self):
        return run(["ip", "netns", "exec", self.switch, "nft", "list", "table", "bridge", TABLE])

    # -- measuring the wire ------------------------------------------------------------
    def measure_rtt(self, a=1, b=2, count=200, port=7999):
        """Round trips of small UDP datagrams between hosts a and b (Python at both
        ends, so this includes two interpreters' wake-up latency): sorted µs."""
        server = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"s.bind(('{self.addr(b)}',{port}))\n"
            "s.settimeout(10)\n"
            f"for _ in range({count + 20}):\n"
            "    try: d,a=s.recvfrom(64)\n"
            "    except socket.timeout: break\n"
            "    s.sendto(d,a)\n"
        )
        client = (
            "import socket,time\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "s.settimeout(1)\n"
            "out=[]\n"
            f"for i in range({count}):\n"
            "    t=time.perf_counter()\n"
            f"    s.sendto(b'x'*36,('{self.addr(b)}',{port}))\n"
            "    try: s.recvfrom(64)\n"
            "    except socket.timeout: continue\n"
            "    out.append((time.perf_counter()-t)*1e6)\n"
            "    time.sleep(0.002)\n"
            "print(' '.join('%.1f'%x for x in out))\n"
        )
        srv = subprocess.Popen(self.exec_argv(b, ["python3", "-c", server]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            out = run(self.exec_argv(a, ["python3", "-c", client]), timeout=30)
        finally:
            srv.kill()
            srv.wait(timeout=5)
        return sorted(float(x) for x in out.split())
