"""Domain hooks of the test driver: libvirt's test-driver state machine, in memory.

Semantics, error codes and messages follow libvirt 9.0's ``test`` driver (``test_driver.c``)
and the domain-object helpers it uses, so that a program written against
``libvirt.open("test:///default")`` sees the same behaviour here.  Every call is O(1) in the
number of domains except listing: names, UUIDs and running ids are indexed.
"""

from __future__ import annotations

import os
import time
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from virt import _records as R
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl
from virt._records import DomainEventType, DomainState
from virt.drivers.test._host import MAX_VCPUS, RUNNING_LABEL
from virt.drivers.test._state import DomainObj, NodeState, check_flags

if TYPE_CHECKING:  # the XML models (lxml) are imported on first parse: list --all needs none
    from virt.xml._base import Element
    from virt.xml.domain import DomainDocument

__all__ = ["DomainOps", "domain_error", "load_from_node"]

# virConnectListAllDomainsFlags
_LIST_ACTIVE, _LIST_INACTIVE, _LIST_PERSISTENT, _LIST_TRANSIENT = 1, 2, 4, 8
_LIST_RUNNING, _LIST_PAUSED, _LIST_SHUTOFF, _LIST_OTHER = 16, 32, 64, 128
_LIST_MANAGEDSAVE, _LIST_NO_MANAGEDSAVE, _LIST_AUTOSTART, _LIST_NO_AUTOSTART = 256, 512, 1024, 2048
_LIST_HAS_SNAPSHOT, _LIST_NO_SNAPSHOT, _LIST_HAS_CHECKPOINT, _LIST_NO_CHECKPOINT = 4096, 8192, 16384, 32768
_LIST_ALL = 65535

# virDomainXMLFlags
_XML_SECURE, _XML_INACTIVE, _XML_UPDATE_CPU, _XML_MIGRATABLE = 1, 2, 4, 8

# virDomainModificationImpact, and the flags that share those bits' neighbours.
AFFECT_LIVE, AFFECT_CONFIG = 1, 2
_MEM_MAXIMUM = 4
_VCPU_MAXIMUM = 4
_TYPED_PARAM_STRING_OKAY = 4

# virDomainCreateFlags / virDomainSaveRestoreFlags / virDomainUndefineFlagsValues
_START_PAUSED, _START_AUTODESTROY, _START_BYPASS_CACHE, _START_FORCE_BOOT = 1, 2, 4, 8
_START_VALIDATE = 16
_SAVE_BYPASS_CACHE, _SAVE_RUNNING, _SAVE_PAUSED = 1, 2, 4
_UNDEFINE_MANAGED_SAVE, _UNDEFINE_SNAPSHOTS_METADATA = 1, 2
_DEFINE_VALIDATE = 1

# virDomainMetadataType
_META_DESCRIPTION, _META_TITLE, _META_ELEMENT = 0, 1, 2

# State reasons (virDomain<State>Reason).
RUNNING_UNKNOWN, RUNNING_BOOTED, RUNNING_RESTORED, RUNNING_FROM_SNAPSHOT, RUNNING_UNPAUSED = 0, 1, 3, 4, 5
PAUSED_USER, PAUSED_FROM_SNAPSHOT = 1, 7
SHUTOFF_SHUTDOWN, SHUTOFF_DESTROYED, SHUTOFF_SAVED, SHUTOFF_FROM_SNAPSHOT = 1, 2, 5, 7

# Event details (virDomainEvent<Type>DetailType).
_DEFINED_ADDED, _DEFINED_UPDATED, _DEFINED_RENAMED = 0, 1, 2
_UNDEFINED_REMOVED, _UNDEFINED_RENAMED = 0, 1
STARTED_BOOTED, STARTED_RESTORED, STARTED_FROM_SNAPSHOT = 0, 2, 3
SUSPENDED_PAUSED, SUSPENDED_RESTORED, SUSPENDED_FROM_SNAPSHOT = 0, 4, 5
RESUMED_UNPAUSED, RESUMED_FROM_SNAPSHOT = 0, 2
STOPPED_SHUTDOWN, STOPPED_DESTROYED, STOPPED_SAVED, STOPPED_FROM_SNAPSHOT = 0, 1, 4, 6

# What virDomainGetMemoryParameters reports for "no limit" (VIR_DOMAIN_MEMORY_PARAM_UNLIMITED).
MEMORY_UNLIMITED = 9007199254740991
# Host CPUs reported by virNodeGetCPUMap on the test driver: the width of affinity maps.
_CPUMAP_WIDTH = 8

# The save image: libvirt's test driver format (magic, native int length, XML) so images are
# interchangeable with it; a trailer libvirt ignores records whether the guest was paused.
_SAVE_MAGIC = b"TestGuestMagic\0"
_SAVE_TRAILER = b"\0virt-state:"
_SAVE_MAX_XML = 4 * 1024 * 1024

_NUMA_MODES = {"strict": 0, "preferred": 1, "interleave": 2, "restrictive": 3}
_NUMA_MODE_NAMES = ("strict", "preferred", "interleave", "restrictive")
_BLKIO_DEVICE_PARAMS = (
    ("device_weight", "weight"),
    ("device_read_iops_sec", "read_iops_sec"),
    ("device_write_iops_sec", "write_iops_sec"),
    ("device_read_bytes_sec", "read_bytes_sec"),
    ("device_write_bytes_sec", "write_bytes_sec"),
)
_MEMTUNE_PARAMS = ("hard_limit", "soft_limit", "swap_hard_limit")
_UNIT_KIB = {"b": 1 / 1024, "bytes": 1 / 1024, "k": 1, "kib": 1, "kb": 1000 / 1024, "m": 1024,
             "mib": 1024, "mb": 1000000 / 1024, "g": 1024 ** 2, "gib": 1024 ** 2,
             "gb": 1000 ** 3 / 1024, "t": 1024 ** 3, "tib": 1024 ** 3, "tb": 1000 ** 4 / 1024}


# -- errors -------------------------------------------------------------------------------


def domain_error(code: ErrorNumber, detail: str | None, *, conf: bool = False,
                 message: str | None = None) -> VirtError:
    """An error as the test driver (``conf=False``) or libvirt's domain config code reports it."""
    return VirtError(code, detail, domain=ErrorDomain.DOMAIN if conf else ErrorDomain.TEST, message=message)


def _invalid(detail: str, conf: bool = False) -> VirtError:
    return domain_error(ErrorNumber.OPERATION_INVALID, detail, conf=conf)


def _internal(detail: str) -> VirtError:
    return domain_error(ErrorNumber.INTERNAL_ERROR, detail)


def _bad_arg(detail: str, conf: bool = False) -> VirtError:
    return domain_error(ErrorNumber.INVALID_ARG, detail, conf=conf)


def _not_running() -> VirtError:
    return _invalid("domain is not running", conf=True)


def _check_active(dom: DomainObj) -> None:
    if not dom.active:
        raise _not_running()


# -- definitions ----------------------------------------------------------------------------


def _ref(dom: DomainObj) -> R.DomainRef:
    """``dom``'s (name, uuid, id); the same record again while they hold (the uuid never
    changes), since building one costs more than list and lookup do otherwise."""
    ref: R.DomainRef | None = dom.ref
    if ref is None or ref.id != dom.id or ref.name != dom.name:
        ref = dom.ref = R.DomainRef(dom.name, dom.uuid, dom.id)
    return ref


_BY_ID = attrgetter("id")
_BY_NAME = attrgetter("name")


def parse_domain(xml: str | bytes, validate: bool = False, first_parse: bool = False) -> DomainDocument:
    """Parse as the test driver does: inactive, default arch i686, xen video for xen guests.
    ``first_parse``: see :class:`DomainDocument`."""
    from virt.xml.domain import DomainDocument

    doc = DomainDocument.from_string(xml, inactive=True, validate=validate, default_arch="i686",
                                     first_parse=first_parse)
    if doc.os_type in ("xen", "linux") and doc.root.find("devices/video") is not None:
        doc = DomainDocument.from_string(xml, inactive=True, default_arch="i686", video_type="xen",
                                         first_parse=first_parse)
    return doc


def _xml_copy(doc: DomainDocument) -> DomainDocument:
    """virDomainDefCopy: ``doc`` formatted and parsed again.  Only the disk order of a first
    parse can change that way (see DomainDocument), so with fewer than two disks it is a copy."""
    if sum(1 for _ in doc.root.iterfind("devices/disk")) < 2:
        return doc.copy()
    return parse_domain(doc.to_string(secure=True))


def _parse(xml: str, validate: bool) -> DomainDocument:
    doc = parse_domain(xml, validate)
    if "\n" in doc.name:
        raise VirtError(ErrorNumber.XML_ERROR, "name contains illegal character '\n'", domain=ErrorDomain.DOMAIN)
    return doc


def generate_ifnames(doc: DomainDocument) -> None:
    """Give every ``<interface>`` without a target device the first free ``testnetN``."""
    # the target devices alone (doc.interfaces() would build a whole record per interface)
    devs = [None if (target := next(net.iterchildren("target"), None)) is None else target.get("dev")
            for net in doc.root.iterfind("devices/interface")]
    used = {dev for dev in devs if dev}
    counter = 0
    for index, dev in enumerate(devs):
        if dev:
            continue
        while f"testnet{counter}" in used:
            counter += 1
        if counter >= 1024:
            raise _internal("Exceeded max iface limit 1024")
        name = f"testnet{counter}"
        used.add(name)
        doc.set_interface_target(index, name)


def _start(node: NodeState, dom: DomainObj, reason: int, live: DomainDocument | None = None) -> None:
    """libvirt's testDomainStartState: a new id, a live copy of the config (made when first
    needed, see DomainObj), running."""
    if live is not None:
        dom.live_def = live
    elif dom.live_def is not None:
        dom.live_def = dom.live_def.copy()
    else:
        dom.run_on_config()
    dom.set_live_id(node.assign_id(dom))
    dom.state, dom.reason = DomainState.RUNNING, reason
    dom.managed_save = False


def _stop(node: NodeState, dom: DomainObj, reason: int) -> None:
    """libvirt's testDomainShutdownState, and removal of a transient domain."""
    node.release_id(dom)
    dom.state, dom.reason = DomainState.SHUTOFF, reason
    dom.live_def = None
    if not dom.persistent:
        node.remove_domain(dom)


def emit(node: NodeState, dom: DomainObj, event: DomainEventType, detail: int) -> None:
    if node.listening(R.DomainEvent):
        node.emit(R.DomainEvent(name=dom.name, uuid=dom.uuid, event=event, detail=detail, id=dom.id))


def _affect(dom: DomainObj, flags: int) -> tuple[bool, bool]:
    """virDomainObjUpdateModificationImpact: which of (live, config) ``flags`` mean."""
    live, config = bool(flags & AFFECT_LIVE), bool(flags & AFFECT_CONFIG)
    if not live and not config:
        live, config = dom.active, not dom.active
    if live and not dom.active:
        raise _not_running()
    if config and not dom.persistent:
        raise _invalid("transient domains do not have any persistent config", conf=True)
    return live, config


def _defs(dom: DomainObj, flags: int) -> tuple[DomainDocument | None, DomainDocument | None]:
    """virDomainObjGetDefs: the live and/or persistent definitions ``flags`` select."""
    live, config = _affect(dom, flags)
    return (dom.live_def if live else None), (dom.persistent_def if config else None)


def one_def(dom: DomainObj, flags: int) -> tuple[DomainDocument, bool]:
    """virDomainObjGetOneDefState: the single definition ``flags`` select, and whether live."""
    if flags & AFFECT_LIVE and flags & AFFECT_CONFIG:
        raise domain_error(ErrorNumber.INVALID_ARG, None, conf=True, message=(
            "Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive"))
    live, _ = _affect(dom, flags)
    doc = dom.live_def if live else dom.persistent_def
    return doc, live


# -- raw XML helpers for what DomainDocument has no accessor for -----------------------------


def _scaled_kib(elem: Element | None) -> int | None:
    if elem is None or not (elem.text or "").strip():
        return None
    value = int((elem.text or "").strip())
    factor = _UNIT_KIB.get((elem.get("unit") or "KiB").lower(), 1)
    return int(value * factor)


def _memtune(doc: DomainDocument) -> dict[str, int]:
    tune = doc.root.find("memtune")
    out = {}
    for name in _MEMTUNE_PARAMS:
        value = _scaled_kib(tune.find(name)) if tune is not None else None
        out[name] = MEMORY_UNLIMITED if value is None else value
    return out


def _blkiotune(doc: DomainDocument) -> dict[str, int | str]:
    tune = doc.root.find("blkiotune")
    weight = int((tune.findtext("weight") or "0").strip() or 0) if tune is not None else 0
    out: dict[str, int | str] = {"weight": weight}
    devices = tune.findall("device") if tune is not None else []
    for param, tag in _BLKIO_DEVICE_PARAMS:
        parts = []
        for dev in devices:
            value = (dev.findtext(tag) or "").strip()
            if value and value != "0":
                parts.append(f"{(dev.findtext('path') or '').strip()},{value}")
        out[param] = ",".join(parts)
    return out


def _numatune(doc: DomainDocument) -> dict[str, int | str]:
    memory = doc.root.find("numatune/memory")
    mode = _NUMA_MODES.get(memory.get("mode", "strict"), 0) if memory is not None else 0
    nodeset = memory.get("nodeset", "") if memory is not None else ""
    return {"numa_mode": mode, "numa_nodeset": nodeset}


# -- setting the tunables (virDomainSet*Parameters) -------------------------------------------

# virTypedParameterType names, and the range of each integer type
_PARAM_RANGES = {"int": (-(1 << 31), (1 << 31) - 1), "uint": (0, (1 << 32) - 1),
                 "llong": (-(1 << 63), (1 << 63) - 1), "ullong": (0, (1 << 64) - 1)}
_MEMTUNE_SET_TYPES = {"hard_limit": "ullong", "soft_limit": "ullong", "swap_hard_limit": "ullong"}
_BLKIO_SET_TYPES = {"weight": "uint", **{param: "string" for param, _ in _BLKIO_DEVICE_PARAMS}}
_NUMA_SET_TYPES = {"numa_mode": "int", "numa_nodeset": "string"}
_SCHED_SET_TYPES = {"weight": "uint"}
_NUMA_PLACEMENT_DEFAULT, _NUMA_PLACEMENT_STATIC, _NUMA_PLACEMENT_AUTO = 0, 1, 2
_TIME_SYNC = 1
# strtoul's view of a number: leading blanks, a sign, digits (virStrToLong_uip and _ullp);
# compiled on first use (re's cache), not at import: every CLI start imports this module
_STRTOUL = r"[ \t\n\v\f\r]*([+-]?)([0-9]+)"


def _typed_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    return "llong" if isinstance(value, int) and value < 0 else "ullong"


def _validate_params(params: dict[str, Any], types: dict[str, str]) -> None:
    """virTypedParamsValidate: every name known, every value of its type.  Python's int
    stands for each of libvirt's integer types as long as it fits in that type's range."""
    for name, value in params.items():
        want = types.get(name)
        if want is None:
            raise VirtError(ErrorNumber.ARGUMENT_UNSUPPORTED, f"parameter '{name}' not supported")
        if want == "string":
            ok = isinstance(value, str)
        else:
            low, high = _PARAM_RANGES[want]
            ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        if not ok:
            raise VirtError(ErrorNumber.INVALID_ARG,
                            f"invalid type '{_typed_name(value)}' for parameter '{name}', expected '{want}'")


def _sort_top(doc: DomainDocument) -> None:
    from virt.xml._util import sort_children
    from virt.xml.domain import _TOP_ORDER, _TOP_RANK

    sort_children(doc.root, _TOP_RANK, ns_rank=len(_TOP_ORDER))


def _top_child(doc: DomainDocument, tag: str) -> Element:
    """``doc``'s top-level ``<tag>``, made (in libvirt's place) when missing."""
    from virt.xml._base import sub

    elem = doc.root.find(tag)
    if elem is None:
        elem = sub(doc.root, tag)
        _sort_top(doc)
    return elem


def _set_memtune(doc: DomainDocument, values: dict[str, int]) -> None:
    """``def->mem.*_limit = value`` and virDomainMemtuneFormat: a limit is written in KiB
    unless unlimited; an empty ``<memtune>`` is left out."""
    from virt.xml._base import sub
    from virt.xml._util import sort_children

    tune = _top_child(doc, "memtune")
    for name, value in values.items():
        for old in tune.findall(name):
            tune.remove(old)
        if value < MEMORY_UNLIMITED:
            sub(tune, name, {"unit": "KiB"}, text=str(value))
    sort_children(tune, {"hard_limit": 0, "soft_limit": 1, "min_guarantee": 2, "swap_hard_limit": 3})
    if len(tune) == 0:
        doc.root.remove(tune)


def _blkio_devices(text: str, param: str) -> list[tuple[str, int]]:
    """virDomainDriverParseBlkioDeviceStr: ``"/dev/sda,100,/dev/sdb,200"`` as (path, value)."""
    import re

    if text == "":
        return []
    strtoul = re.compile(_STRTOUL)
    parse_error = domain_error(ErrorNumber.INVALID_ARG, f"unable to parse blkio device '{param}' '{text}'",
                               conf=True)
    if text.count(",") % 2 == 0:  # a valid string has an even number of fields
        raise parse_error
    limit = (1 << 64) - 1 if param.endswith("bytes_sec") else (1 << 32) - 1
    out = []
    pos = 0
    while True:
        comma = text.find(",", pos)
        if comma < 0:
            raise parse_error
        path, pos = text[pos:comma], comma + 1
        match = strtoul.match(text, pos)
        if match is None or match.group(1) == "-" or int(match.group(2)) > limit:
            raise domain_error(ErrorNumber.INVALID_ARG, f"invalid value '{text[pos:]}' for parameter '{param}' "
                               f"of device '{path}'", conf=True)
        out.append((path, int(match.group(2))))
        pos = match.end()
        if pos == len(text):
            return out
        if text[pos] != ",":
            raise parse_error
        pos += 1


def _set_blkio_device(tune: Element, tag: str, path: str, value: int) -> None:
    """virDomainDriverMergeBlkioDevice for one device, on ``<blkiotune>``; values of 0 are
    not written (virDomainDefFormatBlkiotune), nor a device left with none."""
    from virt.xml._base import sub
    from virt.xml._util import sort_children

    device = next((dev for dev in tune.iterchildren("device") if (dev.findtext("path") or "") == path), None)
    if device is None:
        if not value:
            return
        device = sub(tune, "device")
        sub(device, "path", text=path)
    for old in device.findall(tag):
        device.remove(old)
    if value:
        sub(device, tag, text=str(value))
    sort_children(device, {"path": 0, "weight": 1, "read_iops_sec": 2, "write_iops_sec": 3,
                           "read_bytes_sec": 4, "write_bytes_sec": 5})
    if all(child.tag == "path" for child in device):
        tune.remove(device)


def _set_blkiotune(doc: DomainDocument, params: dict[str, Any]) -> None:
    """virDomainDriverSetupPersistentDefBlkioParams: each parameter in turn; a malformed device
    list is skipped (the others still apply) and reported at the end."""
    from virt.xml._base import sub
    from virt.xml._util import sort_children

    tune = _top_child(doc, "blkiotune")
    error: VirtError | None = None
    tags = dict(_BLKIO_DEVICE_PARAMS)
    for name, value in params.items():
        if name == "weight":
            for old in tune.findall("weight"):
                tune.remove(old)
            if value:
                sub(tune, "weight", text=str(value), index=0)
            continue
        try:
            devices = _blkio_devices(value, name)
        except VirtError as exc:
            error = exc
            continue
        for path, number in devices:
            _set_blkio_device(tune, tags[name], path, number)
    sort_children(tune, {"weight": 0, "device": 1})
    if len(tune) == 0:
        doc.root.remove(tune)
    if error is not None:
        raise error


def _set_numatune(doc: DomainDocument, mode: int, nodeset: set[int] | None) -> None:
    """virDomainNumatuneSet on ``<numatune><memory>``, and how virDomainNumatuneFormatXML
    writes it (a mode, then a nodeset when static or ``placement='auto'``)."""
    from virt.xml._base import sub
    from virt.xml.domain import _format_bitmap, _parse_bitmap

    if mode == -1 and nodeset is None:
        return
    memory = doc.root.find("numatune/memory")
    placement = -1
    if memory is None:
        mode = 0 if mode == -1 else mode
        placement = _NUMA_PLACEMENT_DEFAULT
        cur_mode, cur_nodes = 0, None
    else:
        cur_mode = _NUMA_MODES.get(memory.get("mode", "strict"), 0)
        raw = memory.get("nodeset") if memory.get("placement") != "auto" else None
        cur_nodes = _parse_bitmap(raw) if raw else None
    new_mode = cur_mode if mode == -1 else mode
    new_nodes = cur_nodes
    if nodeset is not None:
        new_nodes = nodeset
        if placement == -1:
            placement = _NUMA_PLACEMENT_STATIC
    if placement == _NUMA_PLACEMENT_DEFAULT:
        vcpu = doc.root.find("vcpu")
        static = vcpu is None or vcpu.get("placement", "static") == "static"
        placement = _NUMA_PLACEMENT_STATIC if new_nodes or static else _NUMA_PLACEMENT_AUTO
    if placement == _NUMA_PLACEMENT_STATIC and not new_nodes:
        raise domain_error(ErrorNumber.CONFIG_UNSUPPORTED,
                           "nodeset for NUMA memory tuning must be set if 'placement' is 'static'", conf=True)
    if placement == -1:
        placement = _NUMA_PLACEMENT_AUTO if memory is not None and memory.get("placement") == "auto" \
            else _NUMA_PLACEMENT_STATIC
    if memory is None:
        memory = sub(_top_child(doc, "numatune"), "memory", index=0)
    memory.attrib.clear()
    memory.set("mode", _NUMA_MODE_NAMES[new_mode])
    if placement == _NUMA_PLACEMENT_STATIC:
        memory.set("nodeset", _format_bitmap(new_nodes or ()))
    else:
        memory.set("placement", "auto")


def _lifecycle_action(doc: DomainDocument, tag: str, default: str) -> str:
    return (doc.root.findtext(tag) or default).strip()


def _has_memballoon(doc: DomainDocument) -> bool:
    balloon = doc.root.find("devices/memballoon")
    return balloon is not None and balloon.get("model") != "none"


def _cpuset(doc: DomainDocument, hostcpus: int) -> list[bool]:
    """The vCPU affinity (``<vcpu cpuset=...>``) as a bitmap over the host CPUs."""
    spec = doc.root.find("vcpu")
    text = spec.get("cpuset") if spec is not None else None
    if not text:
        return [True] * hostcpus
    bits = [False] * hostcpus
    for part in text.split(","):
        part = part.strip()
        negate = part.startswith("^")
        part = part.lstrip("^")
        lo, _, hi = part.partition("-")
        try:
            rng = range(int(lo), int(hi or lo) + 1)
        except ValueError:
            continue
        for cpu in rng:
            if 0 <= cpu < hostcpus:
                bits[cpu] = not negate
    return bits


def _disk_index(doc: DomainDocument, name: str) -> int:
    """virDomainDiskIndexByName without ambiguity: by target, or by source path for '/...'."""
    candidate = -1
    for i, disk in enumerate(doc.disks()):
        if not name.startswith("/"):
            if disk.target == name:
                return i
        elif disk.source == name:
            if candidate >= 0:
                return -1
            candidate = i
    return candidate


def _find_net(doc: DomainDocument, device: str) -> tuple[int, Any]:
    """virDomainNetFind: an interface by MAC address or by target device name."""
    from virt.xml._util import parse_mac

    mac = parse_mac(device)
    for i, iface in enumerate(doc.interfaces()):
        if mac is not None:
            if iface.mac and iface.mac.lower() == mac:
                return i, iface
        elif iface.target_dev == device:
            return i, iface
    raise _bad_arg(f"'{device}' is not a known interface", conf=True)


def _now_us() -> int:
    return time.time_ns() // 1000


# -- the node file ----------------------------------------------------------------------------


_TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"


def load_from_node(node: NodeState, root: Element, base_dir: str | None) -> None:
    """Add the ``<domain>`` children of a node file, as libvirt's test driver does: running
    with reason unknown unless the ``test:runstate`` element says otherwise."""
    from virt.drivers.test._loader import child_xml
    from virt.drivers.test._snapshots import load_snapshots
    from virt.xml._base import parse_xml

    for elem in root.findall("domain"):
        text = child_xml(elem, base_dir)
        raw = parse_xml(text, root="domain", domain=ErrorDomain.DOMAIN)
        runstate, transient, managed = _test_namespace(raw)
        snapshots = load_snapshots(raw, base_dir)
        # libvirt starts a node file's domain on the definition it parsed, and keeps a copy
        # made through XML as the persistent one (virDomainObjSetDefTransient): the two can
        # differ in disk order (see DomainDocument), hence first_parse and the copy below.
        doc = parse_domain(text, first_parse=True)
        for child in list(doc.root):
            if isinstance(child.tag, str) and child.tag.startswith(f"{{{_TEST_NS}}}"):
                doc.root.remove(child)
        generate_ifnames(doc)
        other = node.domains.get(doc.uuid)
        if other is not None and other.name != doc.name:
            raise domain_error(ErrorNumber.OPERATION_FAILED,
                               f"domain '{other.name}' is already defined with uuid {doc.uuid}", conf=True)
        if other is not None or doc.name in node.domain_names:
            raise domain_error(ErrorNumber.OPERATION_FAILED,
                               f"domain '{doc.name}' already exists with uuid {node.domain_names[doc.name]}",
                               conf=True)
        running = runstate != DomainState.SHUTOFF
        persistent = None if transient else doc
        if running and not transient:
            persistent = _xml_copy(doc)
        dom = DomainObj(uuid=doc.uuid, name=doc.name, persistent_def=persistent)
        if transient:
            dom.live_def = doc
        node.add_domain(dom)
        if running:
            _start(node, dom, RUNNING_BOOTED, live=doc)
        dom.state, dom.reason = DomainState(runstate), 0
        dom.managed_save = managed
        dom.snapshots, dom.current_snapshot = snapshots


def _test_namespace(root: Element) -> tuple[int, bool, bool]:
    """The ``test:runstate``, ``test:transient`` and ``test:hasmanagedsave`` elements."""
    runstate = int(DomainState.RUNNING)
    text = root.findtext(f"{{{_TEST_NS}}}runstate")
    if text is not None:
        try:
            runstate = int(text.strip())
        except ValueError:
            raise VirtError(ErrorNumber.XML_ERROR, "invalid runstate", domain=ErrorDomain.TEST) from None
        if not 0 <= runstate < len(DomainState):
            raise VirtError(ErrorNumber.XML_ERROR, f"runstate '{runstate}' out of range'", domain=ErrorDomain.TEST)
    transient = root.find(f"{{{_TEST_NS}}}transient") is not None
    managed = root.find(f"{{{_TEST_NS}}}hasmanagedsave") is not None
    if transient and runstate == DomainState.SHUTOFF:
        raise VirtError(ErrorNumber.XML_ERROR, "transient domain cannot have runstate 'shutoff'",
                        domain=ErrorDomain.TEST)
    if managed and runstate != DomainState.SHUTOFF:
        raise VirtError(ErrorNumber.XML_ERROR,
                        "domain with managedsave data can only have runstate 'shutoff'", domain=ErrorDomain.TEST)
    return runstate, transient, managed


# -- the hooks --------------------------------------------------------------------------------


class DomainOps:
    """Implements :mod:`virt.hookspecs.domain` on the in-memory node."""

    node: NodeState

    def _emit(self, dom: DomainObj, event: DomainEventType, detail: int) -> None:
        emit(self.node, dom, event, detail)

    def _add(self, doc: DomainDocument, live: bool) -> tuple[DomainObj, bool]:
        """virDomainObjListAdd: a new domain, or the existing one ``doc`` redefines.

        Returns the domain and whether it already existed.  Nothing changes on error.
        """
        node = self.node
        same = node.domains.get(doc.uuid)
        if same is not None:
            if same.name != doc.name:
                raise domain_error(ErrorNumber.OPERATION_FAILED,
                                   f"domain '{same.name}' is already defined with uuid {doc.uuid}", conf=True)
            if live and same.active:
                raise _invalid(f"domain '{same.name}' is already active", conf=True)
            return same, True
        other = node.domain_names.get(doc.name)
        if other is not None:
            raise domain_error(ErrorNumber.OPERATION_FAILED,
                               f"domain '{doc.name}' already exists with uuid {other}", conf=True)
        dom = DomainObj(uuid=doc.uuid, name=doc.name)
        node.add_domain(dom)
        return dom, False

    # -- define and look up ---------------------------------------------------------------

    @hookimpl
    def virt_domain_define_xml(self, xml: str, flags: int) -> R.DomainRef:
        check_flags(flags, _DEFINE_VALIDATE, "testDomainDefineXMLFlags")
        doc = _parse(xml, bool(flags & _DEFINE_VALIDATE))
        generate_ifnames(doc)
        with self.node.lock:
            dom, existed = self._add(doc, live=False)
            dom.persistent_def = doc
            self._emit(dom, DomainEventType.DEFINED, _DEFINED_UPDATED if existed else _DEFINED_ADDED)
            return _ref(dom)

    @hookimpl
    def virt_domain_create_xml(self, xml: str, flags: int) -> R.DomainRef:
        check_flags(flags, _START_VALIDATE | _START_PAUSED | _START_AUTODESTROY, "testDomainCreateXML")
        doc = _parse(xml, bool(flags & _START_VALIDATE))
        generate_ifnames(doc)
        with self.node.lock:
            dom, _ = self._add(doc, live=True)
            _start(self.node, dom, RUNNING_BOOTED, live=doc)
            self._emit(dom, DomainEventType.STARTED, STARTED_BOOTED)
            if flags & _START_PAUSED:
                dom.state, dom.reason = DomainState.PAUSED, PAUSED_USER
                self._emit(dom, DomainEventType.SUSPENDED, SUSPENDED_PAUSED)
            return _ref(dom)

    @hookimpl
    def virt_domain_undefine(self, uuid: str, flags: int) -> None:
        check_flags(flags, _UNDEFINE_MANAGED_SAVE | _UNDEFINE_SNAPSHOTS_METADATA, "testDomainUndefineFlags")
        with self.node.lock:
            dom = self.node.domain(uuid)
            if not dom.persistent:
                raise _invalid("cannot undefine transient domain")
            if dom.managed_save and not flags & _UNDEFINE_MANAGED_SAVE:
                raise _invalid("Refusing to undefine while domain managed save image exists")
            if not dom.active and dom.snapshots and not flags & _UNDEFINE_SNAPSHOTS_METADATA:
                raise _invalid(f"cannot delete inactive domain with {len(dom.snapshots)} snapshots")
            self._emit(dom, DomainEventType.UNDEFINED, _UNDEFINED_REMOVED)
            dom.managed_save = False
            dom.persistent_def = None
            dom.autostart = False
            if not dom.active:
                self.node.remove_domain(dom)

    @hookimpl
    def virt_domain_lookup_by_name(self, name: str) -> R.DomainRef:
        with self.node.lock:
            uuid = self.node.domain_names.get(name)
            if uuid is None:
                raise domain_error(ErrorNumber.NO_DOMAIN, f"no domain with matching name '{name}'")
            return _ref(self.node.domains[uuid])

    @hookimpl
    def virt_domain_lookup_by_uuid(self, uuid: str) -> R.DomainRef:
        with self.node.lock:
            return _ref(self.node.domain(uuid))

    @hookimpl
    def virt_domain_lookup_by_id(self, id: int) -> R.DomainRef:
        with self.node.lock:
            uuid = self.node.domain_ids.get(id)
            if uuid is None:
                raise domain_error(ErrorNumber.NO_DOMAIN, f"no domain with matching id {id}")
            return _ref(self.node.domains[uuid])

    @hookimpl
    def virt_domain_list(self, flags: int) -> list[R.DomainRef]:
        check_flags(flags, _LIST_ALL, "testConnectListAllDomains")
        with self.node.lock:
            doms = list(self.node.domains.values())
            if flags:
                doms = [d for d in doms if _matches(d, flags)]
            running = sorted([d for d in doms if d.id >= 0], key=_BY_ID)
            inactive = sorted([d for d in doms if d.id < 0], key=_BY_NAME)
            # _ref inlined: this runs for every domain of the node
            return [ref if (ref := d.ref) is not None and ref.id == d.id and ref.name == d.name else _ref(d)
                    for d in running + inactive]

    # -- lifecycle ------------------------------------------------------------------------

    @hookimpl
    def virt_domain_create(self, uuid: str, flags: int) -> None:
        check_flags(flags, _START_PAUSED | _START_AUTODESTROY | _START_BYPASS_CACHE | _START_FORCE_BOOT,
                    "testDomainCreateWithFlags")
        with self.node.lock:
            dom = self.node.domain(uuid)
            if dom.state != DomainState.SHUTOFF:
                raise _internal(f"Domain '{dom.name}' is already running")
            _start(self.node, dom, RUNNING_BOOTED)
            self._emit(dom, DomainEventType.STARTED, STARTED_BOOTED)
            if flags & _START_PAUSED:
                dom.state, dom.reason = DomainState.PAUSED, PAUSED_USER
                self._emit(dom, DomainEventType.SUSPENDED, SUSPENDED_PAUSED)

    @hookimpl
    def virt_domain_destroy(self, uuid: str, flags: int) -> None:
        check_flags(flags, 1, "testDomainDestroyFlags")
        with self.node.lock:
            dom = self.node.domain(uuid)
            _check_active(dom)
            _stop(self.node, dom, SHUTOFF_DESTROYED)
            self._emit(dom, DomainEventType.STOPPED, STOPPED_DESTROYED)

    def _power_action(self, dom: DomainObj, action: str) -> None:
        """testDomainActionSetState, then the stop it may mean."""
        if action in ("restart", "rename-restart"):
            dom.state, dom.reason = DomainState.RUNNING, RUNNING_BOOTED
            return
        _stop(self.node, dom, SHUTOFF_SHUTDOWN)
        self._emit(dom, DomainEventType.STOPPED, STOPPED_SHUTDOWN)

    @hookimpl
    def virt_domain_shutdown(self, uuid: str, flags: int) -> None:
        # libvirt's test driver takes no method bits; accepting them (and ignoring them, as
        # there is no guest to ask) lets `shutdown --mode acpi` work.
        check_flags(flags, 0x3F, "testDomainShutdownFlags")
        with self.node.lock:
            dom = self.node.domain(uuid)
            if dom.state == DomainState.SHUTOFF:
                raise _internal(f"domain '{dom.name}' not running")
            self._power_action(dom, _lifecycle_action(dom.definition, "on_poweroff", "destroy"))

    @hookimpl
    def virt_domain_reboot(self, uuid: str, flags: int) -> None:
        check_flags(flags, 0x3F, "testDomainReboot")
        with self.node.lock:
            dom = self.node.domain(uuid)
            _check_active(dom)
            self._power_action(dom, _lifecycle_action(dom.definition, "on_reboot", "restart"))

    @hookimpl
    def virt_domain_reset(self, uuid: str, flags: int) -> None:
        check_flags(flags, 0, "testDomainReset")
        with self.node.lock:
            _check_active(self.node.domain(uuid))

    @hookimpl
    def virt_domain_suspend(self, uuid: str) -> None:
        with self.node.lock:
            dom = self.node.domain(uuid)
            if dom.state in (DomainState.SHUTOFF, DomainState.PAUSED):
                raise _internal(f"domain '{dom.name}' not running")
            dom.state, dom.reason = DomainState.PAUSED, PAUSED_USER
            self._emit(dom, DomainEventType.SUSPENDED, SUSPENDED_PAUSED)

    @hookimpl
    def virt_domain_resume(self, uuid: str) -> None:
        with self.node.lock:
            dom = self.node.domain(uuid)
            if dom.state != DomainState.PAUSED:
                raise _internal(f"domain '{dom.name}' not paused")
            dom.state, dom.reason = DomainState.RUNNING, RUNNING_UNPAUSED
            self._emit(dom, DomainEventType.RESUMED, RESUMED_UNPAUSED)

    # -- save and restore -----------------------------------------------------------------

    @hookimpl
    def virt_domain_save(self, uuid: str, path: str, xml: str | None, flags: int) -> None:
        check_flags(flags, _SAVE_BYPASS_CACHE | _SAVE_RUNNING | _SAVE_PAUSED, "testDomainSaveFlags")
        if xml:
            raise domain_error(ErrorNumber.ARGUMENT_UNSUPPORTED, "xml modification unsupported")
        with self.node.lock:
            dom = self.node.domain(uuid)
            _check_active(dom)
            paused = dom.state == DomainState.PAUSED
            if flags & _SAVE_RUNNING:
                paused = False
            elif flags & _SAVE_PAUSED:
                paused = True
            _write_image(path, dom, paused)
            _stop(self.node, dom, SHUTOFF_SAVED)
            self._emit(dom, DomainEventType.STOPPED, STOPPED_SAVED)

    @hookimpl
    def virt_domain_restore(self, path: str, xml: str | None, flags: int) -> R.DomainRef:
        check_flags(flags, _SAVE_BYPASS_CACHE | _SAVE_RUNNING | _SAVE_PAUSED, "testDomainRestoreFlags")
        if xml:
            raise domain_error(ErrorNumber.ARGUMENT_UNSUPPORTED, "xml modification unsupported")
        doc, paused = _read_image(path)
        if flags & _SAVE_RUNNING:
            paused = False
        elif flags & _SAVE_PAUSED:
            paused = True
        generate_ifnames(doc)
        with self.node.lock:
            dom, _ = self._add(doc, live=True)
            _start(self.node, dom, RUNNING_RESTORED, live=doc)
            self._emit(dom, DomainEventType.STARTED, STARTED_RESTORED)
            if paused:
                dom.state, dom.reason = DomainState.PAUSED, PAUSED_USER
                self._emit(dom, DomainEventType.SUSPENDED, SUSPENDED_RESTORED)
            return _ref(dom)

    @hookimpl
    def virt_domain_managed_save(self, uuid: str, flags: int) -> None:
        check_flags(flags, _SAVE_BYPASS_CACHE | _SAVE_RUNNING | _SAVE_PAUSED, "testDomainManagedSave")
        with self.node.lock:
            dom = self.node.domain(uuid)
            _check_active(dom)
            if not dom.persistent:
                raise _invalid("cannot do managed save for transient domain")
            _stop(self.node, dom, SHUTOFF_SAVED)
            self._emit(dom, DomainEventType.STOPPED, STOPPED_SAVED)
            dom.managed_save = True

    @hookimpl
    def virt_domain_has_managed_save_image(self, uuid: str, flags: int) -> bool:
        check_flags(flags, 0, "testDomainHasManagedSaveImage")
        with self.node.lock:
            return self.node.domain(uuid).managed_save

    @hookimpl
    def virt_domain_managed_save_remove(self, uuid: str, flags: int) -> None:
        check_flags(flags, 0, "testDomainManagedSaveRemove")
        with self.node.lock:
            self.node.domain(uuid).managed_save = False

    # -- state and config -----------------------------------------------------------------

    @hookimpl
    def virt_domain_get_info(self, uuid: str) -> R.DomainInfo:
        with self.node.lock:
            dom = self.node.domain(uuid)
            max_memory, memory, vcpus = dom.facts_def.info_facts
            return R.DomainInfo(dom.state, max_memory, memory, vcpus, _now_us() * 1000)

    @hookimpl
    def virt_domain_get_state(self, uuid: str, flags: int) -> tuple[int, int]:
        check_flags(flags, 0, "testDomainGetState")
        with self.node.lock:
            dom = self.node.domain(uuid)
            return int(dom.state), dom.reason

    @hookimpl
    def virt_domain_get_stats(self, uuid: str, stats: int, flags: int) -> dict[str, Any]:
        # libvirt's test driver reports the state group only, whatever else is asked for
        with self.node.lock:
            dom = self.node.domain(uuid)
            if stats and not stats & 1:
                return {}
            return {"state.state": int(dom.state), "state.reason": dom.reason}

    @hookimpl
    def virt_domain_get_xml(self, uuid: str, flags: int) -> str:
        check_flags(flags, _XML_SECURE | _XML_INACTIVE | _XML_UPDATE_CPU | _XML_MIGRATABLE, "testDomainGetXMLDesc")
        with self.node.lock:
            dom = self.node.domain(uuid)
            inactive = bool(flags & (_XML_INACTIVE | _XML_MIGRATABLE))
            doc = dom.persistent_def if (flags & _XML_INACTIVE and dom.persistent) else dom.definition
            return str(doc.to_string(inactive=inactive, secure=bool(flags & _XML_SECURE)))

    @hookimpl
    def virt_domain_get_security_label(self, uuid: str) -> R.SecurityLabel:
        with self.node.lock:
            active = self.node.domain(uuid).active
        label, enforcing = RUNNING_LABEL if active else ("", False)
        return R.SecurityLabel(label=label, enforcing=enforcing)

    @hookimpl
    def virt_domain_get_os_type(self, uuid: str) -> str:
        with self.node.lock:
            self.node.domain(uuid)
        return "linux"  # what libvirt's test driver answers, whatever the XML says

    @hookimpl
    def virt_domain_get_id(self, uuid: str) -> int:
        with self.node.lock:
            return self.node.domain(uuid).id

    @hookimpl
    def virt_domain_is_active(self, uuid: str) -> bool:
        with self.node.lock:
            return self.node.domain(uuid).active

    @hookimpl
    def virt_domain_is_persistent(self, uuid: str) -> bool:
        with self.node.lock:
            return self.node.domain(uuid).persistent

    @hookimpl
    def virt_domain_get_autostart(self, uuid: str) -> bool:
        with self.node.lock:
            return self.node.domain(uuid).autostart

    @hookimpl
    def virt_domain_set_autostart(self, uuid: str, autostart: bool) -> None:
        with self.node.lock:
            self.node.domain(uuid).autostart = bool(autostart)

    @hookimpl
    def virt_domain_set_memory(self, uuid: str, memory: int, flags: int) -> None:
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG | _MEM_MAXIMUM, "testDomainSetMemoryFlags")
        with self.node.lock:
            dom = self.node.domain(uuid)
            doc, live = one_def(dom, flags)
            if flags & _MEM_MAXIMUM:
                if live:
                    raise _invalid("cannot resize the maximum memory on an active domain")
                if doc.root.find("cpu/numa/cell") is not None:
                    raise _invalid("initial memory size of a domain with NUMA nodes cannot be modified with this API")
                hotplug_max = _scaled_kib(doc.root.find("maxMemory"))
                if hotplug_max and hotplug_max < memory:
                    raise _invalid("cannot set initial memory size greater than the maximum memory size")
                doc.memory_kib = memory
                if doc.current_memory_kib > memory:
                    doc.current_memory_kib = memory
            else:
                if memory > doc.memory_kib:
                    raise _bad_arg("cannot set memory higher than max memory")
                doc.current_memory_kib = memory

    @hookimpl
    def virt_domain_set_vcpus(self, uuid: str, nvcpus: int, flags: int) -> None:
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG | _VCPU_MAXIMUM, "testDomainSetVcpusFlags")
        if nvcpus == 0:
            raise domain_error(ErrorNumber.INVALID_ARG, None, conf=True,
                               message="nvcpus in virDomainSetVcpusFlags must not be zero")
        if nvcpus > MAX_VCPUS:
            raise _bad_arg(f"requested cpu amount exceeds maximum supported amount ({nvcpus} > {MAX_VCPUS})")
        with self.node.lock:
            dom = self.node.domain(uuid)
            live, persistent = _defs(dom, flags)
            if live is not None and live.max_vcpus < nvcpus:
                raise _bad_arg(f"requested cpu amount exceeds maximum ({nvcpus} > {live.max_vcpus})")
            if persistent is not None and not flags & _VCPU_MAXIMUM and persistent.max_vcpus < nvcpus:
                raise _bad_arg(f"requested cpu amount exceeds maximum ({nvcpus} > {persistent.max_vcpus})")
            if live is not None:
                live.current_vcpus = nvcpus
            if persistent is not None:
                if flags & _VCPU_MAXIMUM:
                    persistent.max_vcpus = nvcpus
                    if persistent.current_vcpus > nvcpus:
                        persistent.current_vcpus = nvcpus
                else:
                    persistent.current_vcpus = nvcpus

    @hookimpl
    def virt_domain_get_vcpus_flags(self, uuid: str, flags: int) -> int:
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG | _VCPU_MAXIMUM, "testDomainGetVcpusFlags")
        with self.node.lock:
            doc, _ = one_def(self.node.domain(uuid), flags)
            return int(doc.max_vcpus if flags & _VCPU_MAXIMUM else doc.current_vcpus)

    @hookimpl
    def virt_domain_get_vcpus(self, uuid: str) -> list[R.VcpuInfo]:
        with self.node.lock:
            dom = self.node.domain(uuid)
            if not dom.active:
                raise _invalid("cannot list vcpus for an inactive domain")
            doc = dom.live_def
            info = self.node.node_info
            hostcpus = info.nodes * info.sockets * info.cores * info.threads
            bits = _cpuset(doc, hostcpus)
            last = max((i for i, b in enumerate(bits) if b), default=-1)
            affinity = tuple(bits[:_CPUMAP_WIDTH]) + (False,) * max(0, _CPUMAP_WIDTH - len(bits))
            cpu_time = _now_us() // 10
            return [R.VcpuInfo(number=i, state=1, cpu_time=cpu_time, cpu=last, affinity=affinity)
                    for i in range(doc.current_vcpus)]

    @hookimpl
    def virt_domain_set_metadata(self, uuid: str, type: int, metadata: str | None, key: str | None,
                                 uri: str | None, flags: int) -> None:
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "testDomainSetMetadata")
        if type == _META_ELEMENT:
            if metadata and not key:
                raise domain_error(ErrorNumber.INVALID_ARG, None, conf=True,
                                   message="key in virDomainSetMetadata must not be NULL")
            if not uri:
                raise domain_error(ErrorNumber.INVALID_ARG, None, conf=True,
                                   message="uri in virDomainSetMetadata must not be NULL")
        elif type in (_META_TITLE, _META_DESCRIPTION):
            if type == _META_TITLE and metadata and "\n" in metadata:
                raise domain_error(ErrorNumber.INVALID_ARG, None, conf=True,
                                   message="metadata title can't contain newlines")
        else:
            raise _bad_arg(f"unknown metadata type '{type}'", conf=True)
        with self.node.lock:
            dom = self.node.domain(uuid)
            live, persistent = _defs(dom, flags)
            for doc in (live, persistent):
                if doc is not None:
                    doc.set_metadata(type, metadata, key, uri)

    @hookimpl
    def virt_domain_get_metadata(self, uuid: str, type: int, uri: str | None, flags: int) -> str:
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "testDomainGetMetadata")
        with self.node.lock:
            doc, _ = one_def(self.node.domain(uuid), flags)
            if type == _META_TITLE:
                value = doc.title
            elif type == _META_DESCRIPTION:
                value = doc.description
            elif type == _META_ELEMENT:
                if not uri:
                    raise domain_error(ErrorNumber.INVALID_ARG, None, conf=True,
                                       message="uri in virDomainGetMetadata must not be NULL")
                value = doc.get_metadata_element(uri)
            else:
                raise _bad_arg(f"unknown metadata type '{type}'", conf=True)
            if value is None:
                raise domain_error(ErrorNumber.NO_DOMAIN_METADATA, "Requested metadata element is not present",
                                   conf=True)
            return str(value)

    @hookimpl
    def virt_domain_rename(self, uuid: str, new_name: str, flags: int) -> None:
        check_flags(flags, 0, "testDomainRename")
        with self.node.lock:
            dom = self.node.domain(uuid)
            if dom.active:
                raise _invalid("cannot rename active domain")
            if not dom.persistent:
                raise _invalid("cannot rename a transient domain")
            if dom.state != DomainState.SHUTOFF:
                raise _invalid("domain has to be shutoff before renaming")
            if new_name == dom.name:
                raise _invalid("Can't rename domain to itself", conf=True)
            if new_name in self.node.domain_names:
                raise _invalid(f"domain with name '{new_name}' already exists", conf=True)
            if "/" in new_name:
                raise domain_error(ErrorNumber.XML_ERROR, f"name {new_name} cannot contain '/'")
            self._emit(dom, DomainEventType.UNDEFINED, _UNDEFINED_RENAMED)
            self.node.remove_domain(dom)
            dom.persistent_def.name = new_name
            dom.name = new_name
            self.node.add_domain(dom)
            self._emit(dom, DomainEventType.DEFINED, _DEFINED_RENAMED)

    # -- monitoring -----------------------------------------------------------------------

    @hookimpl
    def virt_domain_get_scheduler_type(self, uuid: str) -> tuple[str, int]:
        with self.node.lock:
            self.node.domain(uuid)
        return "fair", 1

    @hookimpl
    def virt_domain_get_scheduler_parameters(self, uuid: str, flags: int) -> dict[str, int | float | str | bool]:
        check_flags(flags, 0, "testDomainGetSchedulerParametersFlags")
        with self.node.lock:
            self.node.domain(uuid)
        return {"weight": 50}

    @hookimpl
    def virt_domain_get_memory_parameters(self, uuid: str, flags: int) -> dict[str, int | float | str | bool]:
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG | _TYPED_PARAM_STRING_OKAY, "testDomainGetMemoryParameters")
        with self.node.lock:
            doc, _ = one_def(self.node.domain(uuid), flags & ~_TYPED_PARAM_STRING_OKAY)
            return dict(_memtune(doc))

    @hookimpl
    def virt_domain_get_blkio_parameters(self, uuid: str, flags: int) -> dict[str, int | float | str | bool]:
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG | _TYPED_PARAM_STRING_OKAY, "testDomainGetBlkioParameters")
        with self.node.lock:
            doc, _ = one_def(self.node.domain(uuid), flags & ~_TYPED_PARAM_STRING_OKAY)
            return dict(_blkiotune(doc))

    @hookimpl
    def virt_domain_get_numa_parameters(self, uuid: str, flags: int) -> dict[str, int | float | str | bool]:
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG | _TYPED_PARAM_STRING_OKAY, "testDomainGetNumaParameters")
        with self.node.lock:
            doc, _ = one_def(self.node.domain(uuid), flags & ~_TYPED_PARAM_STRING_OKAY)
            return dict(_numatune(doc))

    @hookimpl
    def virt_domain_set_scheduler_parameters(self, uuid: str, params: dict[str, Any], flags: int) -> None:
        """testDomainSetSchedulerParametersFlags: ``weight`` is checked, then dropped (libvirt's
        test driver keeps no scheduler state; its getter always reports 50)."""
        check_flags(flags, 0, "testDomainSetSchedulerParametersFlags")
        _validate_params(params, _SCHED_SET_TYPES)
        with self.node.lock:
            self.node.domain(uuid)

    @hookimpl
    def virt_domain_set_memory_parameters(self, uuid: str, params: dict[str, Any], flags: int) -> None:
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "testDomainSetMemoryParameters")
        _validate_params(params, _MEMTUNE_SET_TYPES)
        with self.node.lock:
            dom = self.node.domain(uuid)
            doc, _ = one_def(dom, flags)
            if "hard_limit" in params or "swap_hard_limit" in params:
                # libvirt compares with the domain's current definition (vm->def), whichever
                # definition the flags select
                now = _memtune(dom.definition)
                hard = params.get("hard_limit", now["hard_limit"])
                swap = params.get("swap_hard_limit", now["swap_hard_limit"])
                if hard > swap:
                    raise _bad_arg("memory hard_limit tunable value must be lower than or equal to swap_hard_limit")
            _set_memtune(doc, {name: params[name] for name in ("soft_limit", "hard_limit", "swap_hard_limit")
                               if name in params})

    @hookimpl
    def virt_domain_set_blkio_parameters(self, uuid: str, params: dict[str, Any], flags: int) -> None:
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "testDomainSetBlkioParameters")
        _validate_params(params, _BLKIO_SET_TYPES)
        with self.node.lock:
            doc, _ = one_def(self.node.domain(uuid), flags)
            _set_blkiotune(doc, params)

    @hookimpl
    def virt_domain_set_numa_parameters(self, uuid: str, params: dict[str, Any], flags: int) -> None:
        from virt.xml.domain import _parse_bitmap

        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "testDomainSetNumaParameters")
        _validate_params(params, _NUMA_SET_TYPES)
        with self.node.lock:
            doc, live = one_def(self.node.domain(uuid), flags)
            mode, nodeset = -1, None
            for name, value in params.items():
                if name == "numa_mode":
                    mode = value
                    if not 0 <= mode < len(_NUMA_MODE_NAMES):
                        raise _bad_arg(f"unsupported numatune mode: '{mode}'")
                else:
                    try:
                        nodeset = _parse_bitmap(value)
                    except VirtError:
                        raise VirtError(ErrorNumber.INVALID_ARG, f"Failed to parse bitmap '{value}'") from None
                    if not nodeset:
                        raise _invalid(f"Invalid nodeset of 'numatune': {value}")
            memory = doc.root.find("numatune/memory")
            if live and mode != -1 and memory is not None and _NUMA_MODES.get(memory.get("mode", "strict")) != mode:
                raise _invalid("can't change numatune mode for running domain")
            _set_numatune(doc, mode, nodeset)

    @hookimpl
    def virt_domain_memory_stats(self, uuid: str, flags: int) -> dict[str, int]:
        check_flags(flags, 0, "testDomainMemoryStats")
        with self.node.lock:
            dom = self.node.domain(uuid)
            _check_active(dom)
            doc = dom.live_def
            if not _has_memballoon(doc):
                return {}
            cur = doc.current_memory_kib
            return {
                "actual": cur, "swap_in": 0, "swap_out": 0, "major_fault": 0, "minor_fault": 0,
                "unused": cur // 2, "available": cur, "usable": cur // 2, "last_update": 627319920,
                "disk_caches": cur // 8, "hugetlb_pgalloc": 0, "hugetlb_pgfail": 0, "rss": cur // 2,
            }

    @hookimpl
    def virt_domain_block_stats(self, uuid: str, disk: str) -> R.BlockStats:
        if not disk:
            raise domain_error(ErrorNumber.OPERATION_UNSUPPORTED, "summary statistics are not supported yet")
        with self.node.lock:
            dom = self.node.domain(uuid)
            _check_active(dom)
            if _disk_index(dom.live_def, disk) < 0:
                raise _bad_arg(f"invalid path: {disk}")
        base = _now_us()
        return R.BlockStats(rd_req=base // 10, rd_bytes=base // 20, wr_req=base // 30, wr_bytes=base // 40,
                          errs=base // 2000000)

    @hookimpl
    def virt_domain_interface_stats(self, uuid: str, device: str) -> R.InterfaceStats:
        with self.node.lock:
            dom = self.node.domain(uuid)
            _check_active(dom)
            _find_net(dom.live_def, device)
        base = _now_us()
        return R.InterfaceStats(rx_bytes=base // 10, rx_packets=base // 100, rx_errs=base // 1000000,
                              rx_drop=base // 2000000, tx_bytes=base // 20, tx_packets=base // 110,
                              tx_errs=base // 3000000, tx_drop=base // 4000000)

    @hookimpl
    def virt_domain_get_block_info(self, uuid: str, disk: str, flags: int) -> R.BlockInfo:
        check_flags(flags, 0, "testDomainGetBlockInfo")
        with self.node.lock:
            doc = self.node.domain(uuid).definition
            index = _disk_index(doc, disk)
            if index < 0:
                raise _bad_arg(f"invalid path {disk} not assigned to domain")
            if not doc.disks()[index].source:
                raise _bad_arg(f"disk '{disk}' does not currently have a source assigned")
        return R.BlockInfo(capacity=1099506450432, allocation=1099511627776, physical=1099511627776)

    @hookimpl
    def virt_domain_interface_addresses(self, uuid: str, source: int, flags: int) -> list[R.DomainInterface]:
        check_flags(flags, 0, "testDomainInterfaceAddresses")
        if not 0 <= source < 3:
            raise domain_error(ErrorNumber.ARGUMENT_UNSUPPORTED, f"Unknown IP address data source {source}")
        with self.node.lock:
            dom = self.node.domain(uuid)
            _check_active(dom)
            result = []
            for i, iface in enumerate(dom.live_def.interfaces()):
                if iface.type == "network":
                    addr = self._network_address(iface.source or "", 20 * (dom.id - 1) + i + 1)
                else:
                    addr = R.IPAddress(type=0, addr=f"192.168.0.{1 + i}", prefix=24)
                result.append(R.DomainInterface(name=iface.target_dev or "", hwaddr=iface.mac or "", addrs=(addr,)))
            return result

    def _network_address(self, network: str, offset: int) -> R.IPAddress:
        """testDomainInterfaceAddressFromNet: the network's first DHCP address plus ``offset``."""
        import ipaddress

        ips = _network_ips(self.node, network)
        if ips is None:
            raise VirtError(ErrorNumber.NO_NETWORK, f"no network with matching name '{network}'",
                            domain=ErrorDomain.TEST)
        if not ips:
            raise _internal(f"network '{network}' has no IP address")
        first = ips[0]
        start = first.dhcp_ranges[0].start if first.dhcp_ranges else first.address
        base = ipaddress.ip_address(start)
        if base.version == 6:
            packed = bytearray(base.packed)
            packed[15] = (packed[15] + offset) & 0xFF
            return R.IPAddress(type=1, addr=str(ipaddress.IPv6Address(bytes(packed))), prefix=first.prefix)
        return R.IPAddress(type=0, addr=str(ipaddress.IPv4Address((int(base) + offset) & 0xFFFFFFFF)),
                         prefix=first.prefix)

    @hookimpl
    def virt_domain_get_time(self, uuid: str, flags: int) -> tuple[int, int]:
        check_flags(flags, 0, "testDomainGetTime")
        with self.node.lock:
            dom = self.node.domain(uuid)
            if dom.state != DomainState.RUNNING:
                raise _invalid("domain is not running")
            return dom.time

    @hookimpl
    def virt_domain_set_time(self, uuid: str, seconds: int, nseconds: int, flags: int) -> None:
        """testDomainSetTime: the clock virt_domain_get_time reports, kept while the domain
        object lives (across restarts); ``TIME_SYNC`` sets it to the given time too."""
        check_flags(flags, _TIME_SYNC, "testDomainSetTime")
        with self.node.lock:
            dom = self.node.domain(uuid)
            _check_active(dom)
            dom.time = (seconds, nseconds)

    @hookimpl
    def virt_domain_get_hostname(self, uuid: str, flags: int) -> str:
        check_flags(flags, 0, "testDomainGetHostname")
        with self.node.lock:
            dom = self.node.domain(uuid)
            _check_active(dom)
            return f"{dom.name}host"


# -- helpers used above -----------------------------------------------------------------------


def _network_ips(node: NodeState, name: str) -> tuple[Any, ...] | None:
    """The ``<ip>`` records of the network called ``name``, or None when there is none."""
    uuid = node.network_names.get(name)
    net = node.networks.get(uuid) if uuid is not None else None
    if net is None:
        return None
    return tuple(net.definition.ips())


def _write_image(path: str, dom: DomainObj, paused: bool) -> None:
    xml = dom.live_def.to_string(inactive=False, secure=True).encode("utf-8")
    import struct

    data = (_SAVE_MAGIC + struct.pack("=i", len(xml)) + xml + _SAVE_TRAILER
            + (b"paused" if paused else b"running"))
    try:
        fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    except OSError as exc:
        raise domain_error(ErrorNumber.SYSTEM_ERROR,
                           f"saving domain '{dom.name}' to '{path}': open failed: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise domain_error(ErrorNumber.SYSTEM_ERROR,
                           f"saving domain '{dom.name}' to '{path}': write failed: {exc.strerror}") from None


def _read_image(path: str) -> tuple[DomainDocument, bool]:
    try:
        with open(path, "rb") as handle:
            data = handle.read(len(_SAVE_MAGIC) + 4 + _SAVE_MAX_XML + 64)
    except OSError as exc:
        raise domain_error(ErrorNumber.SYSTEM_ERROR, f"cannot read domain image '{path}': {exc.strerror}") from None
    if len(data) < len(_SAVE_MAGIC):
        raise domain_error(ErrorNumber.SYSTEM_ERROR, f"incomplete save header in '{path}': Success")
    if data[:len(_SAVE_MAGIC)] != _SAVE_MAGIC:
        raise _internal("mismatched header magic")
    rest = data[len(_SAVE_MAGIC):]
    if len(rest) < 4:
        raise domain_error(ErrorNumber.SYSTEM_ERROR, f"failed to read metadata length in '{path}': Success")
    import struct

    (length,) = struct.unpack("=i", rest[:4])
    if length < 1 or length > _SAVE_MAX_XML:
        raise _internal("length of metadata out of range")
    xml = rest[4:4 + length]
    if len(xml) != length:
        raise domain_error(ErrorNumber.SYSTEM_ERROR, f"incomplete metadata in '{path}': Success")
    trailer = rest[4 + length:]
    paused = trailer.startswith(_SAVE_TRAILER) and trailer[len(_SAVE_TRAILER):].startswith(b"paused")
    return parse_domain(xml), paused


def _matches(dom: DomainObj, flags: int) -> bool:
    # A property is read only when ``flags`` ask about it (a pending domain of the default
    # node would parse its definitions to say whether it is persistent).
    def pick(yes: int, no: int, value: bool) -> bool:
        return not (flags & (yes | no)) or bool(flags & yes and value) or bool(flags & no and not value)

    if not pick(_LIST_ACTIVE, _LIST_INACTIVE, dom.active):
        return False
    if flags & (_LIST_PERSISTENT | _LIST_TRANSIENT) and not pick(_LIST_PERSISTENT, _LIST_TRANSIENT, dom.persistent):
        return False
    if flags & (_LIST_RUNNING | _LIST_PAUSED | _LIST_SHUTOFF | _LIST_OTHER):
        state = dom.state
        if not (
            (flags & _LIST_RUNNING and state == DomainState.RUNNING)
            or (flags & _LIST_PAUSED and state == DomainState.PAUSED)
            or (flags & _LIST_SHUTOFF and state == DomainState.SHUTOFF)
            or (flags & _LIST_OTHER and state not in (DomainState.RUNNING, DomainState.PAUSED, DomainState.SHUTOFF))
        ):
            return False
    if not pick(_LIST_MANAGEDSAVE, _LIST_NO_MANAGEDSAVE, dom.managed_save):
        return False
    if not pick(_LIST_AUTOSTART, _LIST_NO_AUTOSTART, dom.autostart):
        return False
    if flags & (_LIST_HAS_SNAPSHOT | _LIST_NO_SNAPSHOT) and not pick(_LIST_HAS_SNAPSHOT, _LIST_NO_SNAPSHOT,
                                                                     bool(dom.snapshots)):
        return False
    return pick(_LIST_HAS_CHECKPOINT, _LIST_NO_CHECKPOINT, False)
