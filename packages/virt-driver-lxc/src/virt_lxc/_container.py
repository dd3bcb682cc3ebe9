"""From a domain definition to what the controller builds: checked, or a clear ``VirtError``.

What a ``<domain type='lxc'>`` may hold here, and what it becomes:

* ``<os><type>exe</type><init>`` with ``<initarg>``, ``<initenv>``, ``<initdir>``,
  ``<inituser>``/``<initgroup>`` (numeric ids): the init's argv, environment, directory, ids;
* ``<filesystem type='mount'>`` (target ``/`` is the root; others are bind mounts, optionally
  ``<readonly/>``) and ``<filesystem type='ram'>`` (a tmpfs of ``usage`` KiB);
* ``<memory>``, ``<memtune>`` hard/soft/swap limits, ``<cputune>`` shares/period/quota,
  ``<vcpu cpuset>``: the cgroups;
* ``<idmap>``: a user namespace with those maps;
* ``<console type='pty'>``: the console (one; a container always gets one);
* ``<interface type='network'|'bridge'>``: refused until the host networking plugin offers a
  function to plug a veth (see :func:`plug_interfaces`, the hook point);
* ``<features><capabilities policy='default'|'allow'|'deny'>`` with ``<NAME state='on|off'/>``
  entries: the capabilities the init keeps (see :func:`dropped_capabilities`);
* ``<features>`` ``privnet``, ``<clock offset='utc'>``, ``<on_*>``, ``<resource>``,
  ``<emulator>``: accepted.

Anything else is ``CONFIG_UNSUPPORTED`` naming it: nothing is silently dropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml.domain import DomainDocument

from virt_lxc._cgroups import DEFAULT_PIDS_MAX, Limits
from virt_lxc._paths import Layout

__all__ = ["attach_interfaces", "build_spec", "plug_interfaces"]

_D = ErrorDomain.LXC

_TOP_OK = {"name", "uuid", "genid", "title", "description", "metadata", "memory", "currentMemory", "vcpu",
           "cputune", "memtune", "os", "idmap", "features", "clock", "on_poweroff", "on_reboot", "on_crash",
           "devices", "resource", "seclabel"}
_OS_OK = {"type", "init", "initarg", "initenv", "initdir", "inituser", "initgroup"}
_DEVICES_OK = {"emulator", "filesystem", "console", "interface"}
_FORBIDDEN_SOURCES = ("/proc", "/sys", "/dev")


def _unsupported(what: str) -> VirtError:
    return VirtError(ErrorNumber.CONFIG_UNSUPPORTED, what, domain=_D)


def _kib(el: Any) -> int | None:
    if el is None or el.text is None:
        return None
    value = int(el.text.strip())
    unit = (el.get("unit") or "KiB").lower()
    factor = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024, "m": 1024, "mib": 1024,
              "mb": 1000_000 / 1024, "g": 1 << 20, "gib": 1 << 20, "gb": 1e9 / 1024}.get(unit, 1)
    return int(value * factor)


# linux/capability.h, by libvirt's names
CAPABILITIES = {"chown": 0, "dac_override": 1, "dac_read_search": 2, "fowner": 3, "fsetid": 4, "kill": 5,
                "setgid": 6, "setuid": 7, "setpcap": 8, "linux_immutable": 9, "net_bind_service": 10,
                "net_broadcast": 11, "net_admin": 12, "net_raw": 13, "ipc_lock": 14, "ipc_owner": 15,
                "sys_module": 16, "sys_rawio": 17, "sys_chroot": 18, "sys_ptrace": 19, "sys_pacct": 20,
                "sys_admin": 21, "sys_boot": 22, "sys_nice": 23, "sys_resource": 24, "sys_time": 25,
                "sys_tty_config": 26, "mknod": 27, "lease": 28, "audit_write": 29, "audit_control": 30,
                "setfcap": 31, "mac_override": 32, "mac_admin": 33, "syslog": 34, "wake_alarm": 35,
                "block_suspend": 36}
# What libvirt's LXC driver drops unless told otherwise: no kernel modules, no clock, no
# device nodes, no audit or LSM configuration (CAP_SYS_BOOT stays: reboot(2) in a PID
# namespace only ends the container).
DEFAULT_DROPPED = ("sys_module", "sys_time", "mknod", "audit_control", "mac_admin")


def dropped_capabilities(features_caps: Any | None) -> list[int]:
    """The capabilities the init loses (from its bounding set), from ``<features><capabilities>``:
    policy ``default`` drops libvirt's defaults and what is ``off``, keeping what is ``on``;
    ``allow`` drops only what is ``off``; ``deny`` drops everything not ``on``."""
    if features_caps is None:
        return sorted(CAPABILITIES[c] for c in DEFAULT_DROPPED)
    policy = features_caps.get("policy", "default")
    if policy not in ("default", "allow", "deny"):
        raise _unsupported(f"capabilities policy '{policy}' is not supported by the LXC driver")
    states: dict[str, str] = {}
    for entry in features_caps:
        if not isinstance(entry.tag, str):
            continue
        if entry.tag not in CAPABILITIES:
            raise _unsupported(f"capability '{entry.tag}' is not supported by the LXC driver")
        state = entry.get("state", "on")
        if state not in ("on", "off"):
            raise VirtError(ErrorNumber.XML_ERROR, f"invalid state '{state}' of capability '{entry.tag}'",
                            domain=_D)
        states[entry.tag] = state
    if policy == "deny":
        drop = {c for c in CAPABILITIES if states.get(c) != "on"}
    elif policy == "allow":
        drop = {c for c, st in states.items() if st == "off"}
    else:
        drop = {c for c in DEFAULT_DROPPED if states.get(c) != "on"} | {c for c, st in states.items() if st == "off"}
    return sorted(CAPABILITIES[c] for c in drop)


def plug_interfaces(doc: DomainDocument) -> None:
    """The hook point for networking: ``<interface type='network'|'bridge'>`` becomes a veth
    pair, one end in the bridge, the other moved into the container's network namespace
    before its init runs (``virt_host.network.plug_veth``, through ``_driver.interface_hooks``).
    Without the host networking plugin such an interface is refused; other types always are."""
    for nic in doc.root.iterfind("devices/interface"):
        kind = nic.get("type")
        if kind in ("network", "bridge"):
            try:
                import virt_host.network  # noqa: F401
            except ImportError:
                raise _unsupported(f"interface type '{kind}' needs the host networking plugin (pip install "
                                   "virt-host) to plug a veth into its bridge") from None
            continue
        raise _unsupported(f"unsupported interface type '{kind}' for an LXC container")


def attach_interfaces(uri: str, doc: DomainDocument, init_pid: int) -> list[str]:
    """Plug each ``<interface>`` of ``doc`` into its bridge, its other end into the namespace
    of the container's init (``<guest dev=...>`` names it inside, else ``ethN``).  Returns the
    host ends' names (``vethN``), one per interface, in the definition's order: what
    :func:`name_interfaces` writes into the live definition."""
    from virt_host.network import plug_veth

    hosts: list[str] = []
    for index, nic in enumerate(doc.root.iterfind("devices/interface")):
        source = nic.find("source")
        mac = nic.find("mac")
        guest = nic.find("guest")
        kind = nic.get("type")
        hosts.append(plug_veth(
            uri, network=source.get("network") if kind == "network" and source is not None else None,
            bridge=source.get("bridge") if kind == "bridge" and source is not None else None,
            mac=mac.get("address", "") if mac is not None else "", domain_name=doc.name, index=index,
            netns_pid=init_pid, guest_name=guest.get("dev") if guest is not None else None))
    return hosts


#: libvirt's order of an ``<interface>``'s children from ``<target>`` on (virDomainNetDefFormat)
_AFTER_TARGET = ("guest", "model", "driver", "backend", "filterref", "tune", "teaming", "link", "mtu",
                 "coalesce", "port", "boot", "alias", "master", "acpi", "rom", "address")


def name_interfaces(live: DomainDocument, hosts: Sequence[str]) -> None:
    """What libvirt's live definition of a running container says of its veths: the host end
    as ``<target dev='vethN'/>`` (``net->ifname``) and the name inside as ``<guest dev='ethN'/>``
    (``net->ifname_guest``, ``ethN`` when the definition names none).  Only for the live
    definition: the persistent one never carries them."""
    from lxml import etree

    for index, (nic, host) in enumerate(zip(live.root.iterfind("devices/interface"), hosts, strict=False)):
        guest = nic.find("guest")
        if guest is None:
            guest = etree.Element("guest")
            _insert_in_order(nic, guest)
        if not guest.get("dev"):
            guest.set("dev", f"eth{index}")
        target = nic.find("target")
        if target is None:
            target = etree.Element("target")
            _insert_in_order(nic, target)
        target.set("dev", host)


def _insert_in_order(nic: Any, child: Any) -> None:
    later = _AFTER_TARGET[_AFTER_TARGET.index(child.tag) + 1:] if child.tag in _AFTER_TARGET else _AFTER_TARGET
    for position, other in enumerate(nic):
        if other.tag in later:
            nic.insert(position, child)
            return
    nic.append(child)


def _check_source(source: str, layout: Layout, state_dirs: tuple[Path, ...]) -> str:
    if not os.path.isabs(source):
        raise VirtError(ErrorNumber.XML_ERROR, f"filesystem source '{source}' must be an absolute path", domain=_D)
    real = os.path.realpath(source)
    if not os.path.exists(real):
        raise VirtError(ErrorNumber.OPERATION_FAILED, f"filesystem source '{source}' does not exist", domain=_D)
    if layout.confine is not None:
        top = os.path.realpath(layout.confine)
        if real != top and not real.startswith(top + "/"):
            raise VirtError(ErrorNumber.OPERATION_DENIED, f"filesystem source '{source}' is outside {top}, the only "
                            f"place {layout.root} mounts from", domain=_D,
                            message=f"operation forbidden: filesystem source '{source}' is outside {top}")
    for bad in _FORBIDDEN_SOURCES:
        if real == bad or real.startswith(bad + "/"):
            raise VirtError(ErrorNumber.OPERATION_DENIED, f"filesystem source '{source}' is under {bad}", domain=_D,
                            message=f"operation forbidden: a container may not mount {real} from the host")
    for state in state_dirs:
        s = os.path.realpath(state)
        if real == s or real.startswith(s + "/") or s.startswith(real.rstrip("/") + "/"):
            raise VirtError(ErrorNumber.OPERATION_DENIED, f"filesystem source '{source}' holds the driver's state",
                            domain=_D, message=f"operation forbidden: filesystem source '{source}' holds the "
                            "driver's own state")
    return real


def check_definition(doc: DomainDocument) -> None:
    """What can be checked without the host: the shape of the definition."""
    root = doc.root
    if doc.type != "lxc":
        raise _unsupported(f"domain type '{doc.type}' is not supported by the LXC driver (use type='lxc')")
    if doc.os_type != "exe":
        raise _unsupported(f"OS type '{doc.os_type}' is not supported by the LXC driver (use <type>exe</type>)")
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag not in _TOP_OK:
            raise _unsupported(f"element <{child.tag.split('}')[-1]}> is not supported by the LXC driver")
    for child in root.iterfind("os/*"):
        if child.tag not in _OS_OK:
            raise _unsupported(f"element <os><{child.tag}> is not supported by the LXC driver")
    devices = root.find("devices")
    if devices is not None:
        for dev in devices:
            if not isinstance(dev.tag, str):
                continue
            if dev.tag not in _DEVICES_OK:
                raise _unsupported(f"device <{dev.tag}> is not supported by the LXC driver")
            if dev.tag == "filesystem" and dev.get("type", "mount") not in ("mount", "ram"):
                raise _unsupported(f"filesystem type '{dev.get('type')}' is not supported by the LXC driver "
                                   "(use 'mount' or 'ram')")
            if dev.tag == "console" and dev.get("type", "pty") != "pty":
                raise _unsupported(f"console type '{dev.get('type')}' is not supported by the LXC driver (use 'pty')")
    features = root.find("features")
    if features is not None:
        for feat in features:
            if feat.tag == "privnet":
                continue
            if feat.tag == "capabilities":
                dropped_capabilities(feat)  # refuses what it cannot do
                continue
            raise _unsupported(f"feature <{feat.tag}> is not supported by the LXC driver")
    for tag in ("cputune", "memtune"):
        el = root.find(tag)
        if el is None:
            continue
        allowed = {"cputune": {"shares", "period", "quota"},
                   "memtune": {"hard_limit", "soft_limit", "swap_hard_limit"}}[tag]
        for child in el:
            if isinstance(child.tag, str) and child.tag not in allowed:
                raise _unsupported(f"element <{tag}><{child.tag}> is not supported by the LXC driver")
    if root.find("devices/interface") is not None:
        plug_interfaces(doc)


def build_spec(doc: DomainDocument, layout: Layout) -> tuple[dict[str, Any], Limits]:
    """The controller's spec (without runtime paths) and the cgroup limits of ``doc``."""
    check_definition(doc)
    root_el = doc.root
    state_dirs = (layout.run, layout.config, layout.log)
    rootfs: str | None = None
    readonly_root = False
    mounts: list[dict[str, Any]] = []
    for fs in root_el.iterfind("devices/filesystem"):
        kind = fs.get("type", "mount")
        target_el = fs.find("target")
        target = target_el.get("dir") if target_el is not None else None
        if not target or not target.startswith("/"):
            raise VirtError(ErrorNumber.XML_ERROR, "missing or relative filesystem target", domain=_D)
        readonly = fs.find("readonly") is not None
        if kind == "ram":
            src = fs.find("source")
            usage: int | None = None
            if src is not None and src.get("usage"):
                units = (src.get("units") or "KiB").lower()
                factor = {"kib": 1, "k": 1, "mib": 1024, "m": 1024, "gib": 1 << 20, "g": 1 << 20,
                          "b": 1 / 1024, "bytes": 1 / 1024}.get(units, 1)
                usage = int(int(src.get("usage") or 0) * factor)
            if target == "/":
                raise _unsupported("a 'ram' filesystem as the container's root is not supported by the LXC driver")
            mounts.append({"type": "ram", "target": target, "size_kib": usage or 65536})
            continue
        src = fs.find("source")
        source = src.get("dir") if src is not None else None
        if not source:
            raise VirtError(ErrorNumber.XML_ERROR, f"missing source of the filesystem mounted at {target}", domain=_D)
        if target == "/":
            real = _check_source(source, layout, state_dirs)
            if not os.path.isdir(real):
                raise VirtError(ErrorNumber.OPERATION_FAILED, f"root filesystem '{source}' is not a directory",
                                domain=_D)
            rootfs, readonly_root = real, readonly
            continue
        mounts.append({"type": "bind", "source": _check_source(source, layout, state_dirs), "target": target,
                       "readonly": readonly})
    if rootfs is None:
        raise _unsupported("the LXC driver needs a <filesystem type='mount'> with target '/' as the container's "
                           "root (sharing the host's root is not supported)")
    os_el = root_el.find("os")
    init = (os_el.findtext("init") if os_el is not None else None) or "/sbin/init"
    init = init.strip()
    if not init.startswith("/"):
        raise VirtError(ErrorNumber.XML_ERROR, f"init '{init}' must be an absolute path", domain=_D)
    args = [init] + [(a.text or "") for a in (os_el.iterfind("initarg") if os_el is not None else [])]
    _check_init(rootfs, init)
    env = {"PATH": "/bin:/usr/bin:/sbin:/usr/sbin", "TERM": "linux", "HOME": "/", "container": "lxc-libvirt",
           "container_uuid": doc.uuid, "LIBVIRT_LXC_UUID": doc.uuid, "LIBVIRT_LXC_NAME": doc.name}
    if os_el is not None:
        for item in os_el.iterfind("initenv"):
            env[item.get("name") or ""] = item.text or ""
    uid = gid = None
    if os_el is not None:
        for tag in ("inituser", "initgroup"):
            text = (os_el.findtext(tag) or "").strip()
            if text:
                if not text.isdigit():
                    raise _unsupported(f"<{tag}> must be a numeric id for the LXC driver, not '{text}'")
                if tag == "inituser":
                    uid = int(text)
                else:
                    gid = int(text)
    idmap: dict[str, list[list[int]]] | None = None
    idmap_el = root_el.find("idmap")
    if idmap_el is not None:
        if not os.path.exists("/proc/self/ns/user"):
            raise _unsupported("user namespaces are not available on this host")
        idmap = {"uid": [], "gid": []}
        for entry in idmap_el:
            if entry.tag in ("uid", "gid"):
                idmap[entry.tag].append([int(entry.get("start") or 0), int(entry.get("target") or 0),
                                         int(entry.get("count") or 0)])
        if not idmap["uid"] or not idmap["gid"]:
            raise VirtError(ErrorNumber.XML_ERROR, "<idmap> needs both <uid> and <gid> maps", domain=_D)
    on_reboot = (root_el.findtext("on_reboot") or "restart").strip()
    drop_caps = dropped_capabilities(root_el.find("features/capabilities"))
    spec: dict[str, Any] = {
        "uuid": doc.uuid, "name": doc.name, "hostname": doc.name, "root": rootfs, "readonly_root": readonly_root,
        "mounts": mounts, "init": args, "env": env, "initdir": (os_el.findtext("initdir") if os_el is not None
                                                                else None) or "/",
        "uid": uid, "gid": gid, "idmap": idmap, "on_reboot": "restart" if on_reboot == "restart" else "destroy",
        "drop_caps": drop_caps,
    }
    memtune = root_el.find("memtune")
    hard = _kib(memtune.find("hard_limit")) if memtune is not None else None
    memory = doc.memory_kib or None
    limit = min(x for x in (hard, memory) if x) if (hard or memory) else None
    cputune = root_el.find("cputune")

    def tune(tag: str) -> int | None:
        text = cputune.findtext(tag) if cputune is not None else None
        return int(text) if text else None

    vcpu = root_el.find("vcpu")
    limits = Limits(memory_kib=limit, soft_kib=_kib(memtune.find("soft_limit")) if memtune is not None else None,
                    swap_kib=_kib(memtune.find("swap_hard_limit")) if memtune is not None else None,
                    shares=tune("shares"), period_us=tune("period"), quota_us=tune("quota"),
                    pids_max=DEFAULT_PIDS_MAX, cpuset=vcpu.get("cpuset") if vcpu is not None else None)
    return spec, limits


def _check_init(rootfs: str, init: str) -> None:
    """The init must exist in the container and be executable, following symlinks inside it."""
    path = init
    for _ in range(40):
        full = os.path.join(rootfs, path.lstrip("/"))
        if os.path.islink(full):
            target = os.readlink(full)
            path = target if target.startswith("/") else os.path.normpath(os.path.join(os.path.dirname(path), target))
            continue
        if not os.path.isfile(full) or not os.access(full, os.X_OK):
            raise VirtError(ErrorNumber.OPERATION_FAILED, f"cannot find init path '{init}' relative to container root "
                            f"'{rootfs}': No such file or directory" if not os.path.exists(full) else
                            f"init path '{init}' in container root '{rootfs}' is not an executable file",
                            domain=_D)
        return
    raise VirtError(ErrorNumber.OPERATION_FAILED, f"init path '{init}' has too many levels of symbolic links",
                    domain=_D)
