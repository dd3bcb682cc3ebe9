"""dnsmasq for a network: its configuration (as libvirt's ``networkDnsmasqConfContents``
writes it), starting and stopping it, and reading its lease file.

One dnsmasq per running network that has an IPv4/IPv6 address, bound to the bridge alone
(``bind-dynamic`` + ``interface=``), daemonised: ``dnsmasq --conf-file=NAME.conf`` returns once
the daemon has bound its sockets (or failed, with its message on stderr), and its pid is in
``NAME.pid``.  Static DHCP hosts are in ``NAME.hostsfile`` and DNS hosts in ``NAME.addnhosts``:
dnsmasq re-reads both on ``SIGHUP``, which is how ``net-update --live`` of those sections works.

Leases: dnsmasq keeps them in its own lease file ``NAME.leases`` (``dhcp-leasefile=``); a
line is ``EXPIRY MAC IP HOSTNAME CLIENT-ID`` (``*`` for none), DHCPv6 ones follow a ``duid``
line as ``EXPIRY IAID IP HOSTNAME DUID``.  ``net-dhcp-leases`` reads that file.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

import attrs
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._records import NetworkDHCPLease
from virt.xml.network import DhcpLease, NetworkDocument, NetworkIP

__all__ = ["DnsmasqFiles", "alive", "config", "hosts_files", "leases", "needed", "reload", "start", "stop"]

_D = ErrorDomain.NETWORK
_DEFAULT_LEASE_MAX = 65535


@attrs.frozen
class DnsmasqFiles:
    conf: Path
    hostsfile: Path
    addnhosts: Path
    pidfile: Path
    leases: Path


def binary() -> str:
    found = shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.access(p, os.X_OK)), None)
    if found is None:
        raise VirtError(ErrorNumber.INTERNAL_ERROR,
                        "Cannot find 'dnsmasq' binary in PATH (Debian package dnsmasq-base)", domain=_D)
    return found


def needed(doc: NetworkDocument) -> bool:
    """Whether the network runs a dnsmasq: it has an address, or DNS records to serve."""
    return bool(doc.ips())


def _lease_time(lease: DhcpLease | None) -> str | None:
    if lease is None:
        return None
    if lease.expiry == 0:
        return "infinite"
    suffix = {"seconds": "", "minutes": "m", "hours": "h", None: "m"}.get(lease.unit, "m")
    return f"{lease.expiry}{suffix}"


def _dns(doc: NetworkDocument) -> tuple[bool, list[str]]:
    """(DNS wanted, its config lines)."""
    lines: list[str] = []
    dns = doc.root.find("dns")
    if dns is None:
        return True, lines
    if dns.get("enable") == "no":
        return False, lines
    if dns.get("forwardPlainNames") == "no":
        lines.append("domain-needed")
    uses_upstream = False
    for fwd in dns.findall("forwarder"):
        domain, addr = fwd.get("domain"), fwd.get("addr")
        if domain and addr:
            lines.append(f"server=/{domain}/{addr}")
        elif domain:
            lines.append(f"server=/{domain}/")
        elif addr:
            lines.append(f"server={addr}")
            uses_upstream = True
    if uses_upstream:
        lines.append("no-resolv")
    for txt in dns.findall("txt"):
        lines.append(f"txt-record={txt.get('name')},{txt.get('value') or ''}")
    for srv in dns.findall("srv"):
        name = f"_{srv.get('service')}._{srv.get('protocol')}"
        if srv.get("domain"):
            name += f".{srv.get('domain')}"
        record = name
        if srv.get("target"):
            record += f",{srv.get('target')}"
            for key in ("port", "priority", "weight"):
                record += f",{srv.get(key) or 0}"
        lines.append(f"srv-host={record}")
    return True, lines


def config(doc: NetworkDocument, bridge: str, files: DnsmasqFiles) -> str:
    """The ``NAME.conf`` of a network."""
    out = [
        "##WARNING:  THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE",
        "##OVERWRITTEN AND LOST.  Changes to this configuration should be made using:",
        f"##    virt net-edit {doc.name}",
        "## or other application using the virt API.",
        "",
        "strict-order",
        f"user={pwd.getpwuid(os.geteuid()).pw_name}",
        f"pid-file={files.pidfile}",
    ]
    want_dns, dns_lines = _dns(doc)
    if not want_dns:
        out.append("port=0")
    domain = doc.domain_name
    if domain and want_dns:
        dom = doc.root.find("domain")
        if dom is not None and dom.get("localOnly") == "yes":
            out.append(f"local=/{domain}/")
        out.append(f"domain={domain}")
        out.append("expand-hosts")
    out += ["except-interface=lo", "bind-dynamic", f"interface={bridge}"]
    out += dns_lines
    if doc.forward_mode is None and not doc.root.findall("route"):
        out.append("dhcp-option=3")  # isolated: no default route for the guests
    if not want_dns:
        out.append("dhcp-option=6")  # and no DNS server
    nranges = nhosts = 0
    for ip in doc.ips():
        for rng in ip.dhcp_ranges:
            line = f"dhcp-range={rng.start},{rng.end}"
            if ip.family == "ipv4" or ipaddress.ip_address(ip.address).version == 4:
                line += f",{ip.netmask}"
            else:
                line += f",{ip.prefix}"
            lease = _lease_time(rng.lease)
            if lease:
                line += f",{lease}"
            out.append(line)
            first, last = ipaddress.ip_address(rng.start), ipaddress.ip_address(rng.end)
            nranges += int(last) - int(first) + 1
        nhosts += len(ip.dhcp_hosts)
        if ip.dhcp_hosts and not ip.dhcp_ranges and ipaddress.ip_address(ip.address).version == 4:
            network = ipaddress.ip_network(f"{ip.address}/{ip.prefix}", strict=False)
            out.append(f"dhcp-range={network.network_address},static,{ip.netmask}")
        if ip.tftp_root:
            out += ["enable-tftp", f"tftp-root={ip.tftp_root}"]
        if ip.bootp_file:
            out.append(f"dhcp-boot={ip.bootp_file}" + (f",,{ip.bootp_server}" if ip.bootp_server else ""))
    if any(ipaddress.ip_address(ip.address).version == 6 for ip in doc.ips()):
        out.append("enable-ra")  # router advertisements for the IPv6 subnets (libvirt: radvd or this)
    if nranges or nhosts:
        out += ["dhcp-no-override", "dhcp-authoritative",
                f"dhcp-lease-max={min(nranges + nhosts, _DEFAULT_LEASE_MAX) or 1}",
                f"dhcp-hostsfile={files.hostsfile}", f"dhcp-leasefile={files.leases}"]
    out.append(f"addn-hosts={files.addnhosts}")
    return "\n".join(out) + "\n"


def hosts_files(doc: NetworkDocument) -> tuple[str, str]:
    """(``NAME.hostsfile``: the static DHCP hosts, ``NAME.addnhosts``: the DNS hosts)."""
    dhcp: list[str] = []
    for ip in doc.ips():
        v6 = ipaddress.ip_address(ip.address).version == 6
        for host in ip.dhcp_hosts:
            if v6:
                fields = [f"id:{host.id}"] if host.id else []
                fields += [host.name] if host.name else []
                fields.append(f"[{host.ip}]")
            else:
                fields = [f for f in (host.mac, host.ip, host.name) if f]
            lease = _lease_time(host.lease)
            if lease:
                fields.append(lease)
            dhcp.append(",".join(fields))
    dns: list[str] = []
    dns_el = doc.root.find("dns")
    if dns_el is not None:
        for record in dns_el.findall("host"):
            names = [h.text for h in record.findall("hostname") if h.text]
            if names:
                dns.append(f"{record.get('ip')}\t" + "\t".join(names))
    return "".join(line + "\n" for line in dhcp), "".join(line + "\n" for line in dns)


def _stat_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:][:1].decode()


def alive(pid: int | None, conf: Path) -> bool:
    """Whether ``pid`` is our dnsmasq of config ``conf`` (and not a zombie or a recycled pid)."""
    if not pid or pid <= 0:
        return False
    state = _stat_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    return f"--conf-file={conf}".encode() in argv


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text(encoding="ascii").strip() or 0) or None
    except (OSError, ValueError):
        return None


def start(files: DnsmasqFiles) -> int:
    """Run dnsmasq on ``files.conf``; its pid once it serves.  :raises VirtError: it failed."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(files.pidfile)
    argv = [binary(), f"--conf-file={files.conf}"]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, check=False, close_fds=True)
    if proc.returncode != 0:
        message = (proc.stderr or "").strip().replace("\n", " ") or f"exit status {proc.returncode}"
        raise VirtError(ErrorNumber.INTERNAL_ERROR, f"Child process ({' '.join(argv)}) unexpected exit status "
                        f"{proc.returncode}: {message}", domain=_D)
    # the daemon writes its pid file before its parent exits; be patient with a slow disk anyway
    deadline = time.monotonic() + 5
    while True:
        pid = read_pid(files.pidfile)
        if pid is not None and alive(pid, files.conf):
            return pid
        if time.monotonic() > deadline:
            if pid is not None:
                stop(pid, files.conf)
            raise VirtError(ErrorNumber.INTERNAL_ERROR, f"dnsmasq for {files.conf} did not write its pid file",
                            domain=_D)
        time.sleep(0.005)


def stop(pid: int | None, conf: Path, timeout: float = 5.0) -> None:
    """Stop our dnsmasq ``pid`` (SIGTERM, then SIGKILL) and wait until it has exited, sockets
    closed: nothing when it is not ours or gone.  A pidfd keeps a recycled pid out of it (and
    tells the exit itself: an exiting process loses its command line before its sockets)."""
    if not alive(pid, conf):
        return
    assert pid is not None
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not alive(pid, conf):
            return
        import select

        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, sig)
            if poller.poll(int(timeout * 1000)):
                break
    finally:
        os.close(pidfd)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # our own child only when we are its reaper (a test's pid 1)


def reload(pid: int | None, conf: Path) -> bool:
    """SIGHUP: dnsmasq re-reads its hosts files.  False when it does not run."""
    if not alive(pid, conf):
        return False
    assert pid is not None
    os.kill(pid, signal.SIGHUP)
    return True


def _prefix_of(address: str, ips: tuple[NetworkIP, ...]) -> int:
    addr = ipaddress.ip_address(address)
    for ip in ips:
        network = ipaddress.ip_network(f"{ip.address}/{ip.prefix}", strict=False)
        if addr.version == network.version and addr in network:
            return ip.prefix
    return 64 if addr.version == 6 else 24


def leases(path: Path, doc: NetworkDocument, bridge: str, mac: str | None) -> list[NetworkDHCPLease]:
    """The leases of ``path`` (dnsmasq's lease file), those of ``mac`` only if given; expired
    ones are left out, as libvirt does."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    now = int(time.time())
    ips = doc.ips()
    wanted = mac.lower() if mac else None
    out: list[NetworkDHCPLease] = []
    v6 = False
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "duid":
            v6 = True
            continue
        if len(fields) < 4:
            continue
        try:
            expiry = int(fields[0])
        except ValueError:
            continue
        if expiry and expiry < now:
            continue
        address = fields[2]
        try:
            ipaddress.ip_address(address)
        except ValueError:
            continue
        hostname = fields[3] if fields[3] != "*" else None
        clientid = fields[4] if len(fields) > 4 and fields[4] != "*" else None
        if v6:
            lease_mac, iaid, kind = "", fields[1], 1
        else:
            lease_mac, iaid, kind = fields[1].lower(), None, 0
        if wanted is not None and lease_mac != wanted:
            continue
        out.append(NetworkDHCPLease(iface=bridge, expirytime=expiry, type=kind, mac=lease_mac, iaid=iaid,
                                    ipaddr=address, prefix=_prefix_of(address, ips), hostname=hostname,
                                    clientid=clientid))
    return out
