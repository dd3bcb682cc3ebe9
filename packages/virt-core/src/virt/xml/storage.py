"""Storage pool (``<pool>``) and volume (``<volume>``) XML, as libvirt's ``storage_conf.c``.

Like :mod:`virt.xml.network`, ``post_parse`` validates the definition as libvirt's parser does and
rewrites the kept lxml tree into the canonical form libvirt's formatter prints (defaults filled
in, sizes in bytes, paths sanitised, runtime-only data such as a pool's ``<freeExtent>`` or a
volume's ``<timestamps>`` dropped), so ``to_string`` is cheap and ``format(parse(x))`` is a fixed
point.  A volume is always parsed in the context of a pool (its type decides the formats).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Self

import attrs

from virt._errors import ErrorDomain, ErrorNumber
from virt.xml._base import Element, XMLDocument, format_element, sub
from virt.xml._util import (
    arrange,
    attr,
    child_text,
    dedupe,
    drop,
    fail,
    hoist_namespaces,
    keep_open,
    new_uuid,
    only_first,
    open_tag,
    parse_int,
    parse_pci_address,
    parse_uint,
    parse_ull,
    parse_uuid,
    refuse_dot_name,
    set_attrs,
    set_text,
    strip_blanks,
    tristate,
)

__all__ = [
    "POOL_TYPES", "VOLUME_TYPES", "PoolDocument", "PoolSourceHost", "VolumeDocument", "scale_size",
]

_D = ErrorDomain.STORAGE

# flags of the pool source (libvirt's VIR_STORAGE_POOL_SOURCE_*)
_HOST, _DEVICE, _DIR, _ADAPTER, _NAME, _IQN, _NETWORK = (1 << i for i in range(7))

_FILE_FORMATS = (
    "none", "raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop",
    "cow", "qcow", "qcow2", "qed", "vmdk",
)
_DISK_VOL_FORMATS = ("none", "linux", "fat16", "fat32", "linux-swap", "linux-lvm", "linux-raid", "extended")
_FS_FORMATS = (
    "auto", "ext2", "ext3", "ext4", "ufs", "iso9660", "udf", "gfs", "gfs2", "vfat", "hfs+", "xfs",
    "ocfs2", "vmfs",
)
_NETFS_FORMATS = ("auto", "nfs", "glusterfs", "cifs")
_DISK_FORMATS = ("unknown", "dos", "dvh", "gpt", "mac", "bsd", "pc98", "sun", "lvm2")
_LOGICAL_FORMATS = ("unknown", "lvm2")


@attrs.frozen
class _PoolType:
    flags: int
    formats: tuple[str, ...] | None = None
    default_format: str | None = None
    vol_formats: tuple[str, ...] | None = None
    vol_default: str | None = None


_POOLS: dict[str, _PoolType] = {
    "dir": _PoolType(0, None, None, _FILE_FORMATS, "raw"),
    "fs": _PoolType(_DEVICE, _FS_FORMATS, "auto", _FILE_FORMATS, "raw"),
    "netfs": _PoolType(_HOST | _DIR, _NETFS_FORMATS, "auto", _FILE_FORMATS, "raw"),
    "logical": _PoolType(_NAME | _DEVICE, _LOGICAL_FORMATS, "lvm2"),
    "disk": _PoolType(_DEVICE, _DISK_FORMATS, "unknown", _DISK_VOL_FORMATS, "none"),
    "iscsi": _PoolType(_HOST | _DEVICE | _IQN),
    "iscsi-direct": _PoolType(_HOST | _DEVICE | _NETWORK | _IQN),
    "scsi": _PoolType(_ADAPTER),
    "mpath": _PoolType(0),
    "rbd": _PoolType(_HOST | _NETWORK | _NAME, None, None, _FILE_FORMATS, "raw"),
    "sheepdog": _PoolType(_HOST | _NETWORK | _NAME),
    "gluster": _PoolType(_HOST | _NETWORK | _NAME | _DIR, None, None, _FILE_FORMATS, "raw"),
    "zfs": _PoolType(_NAME | _DEVICE),
    "vstorage": _PoolType(_NAME, None, None, _FILE_FORMATS, "raw"),
}
POOL_TYPES = tuple(_POOLS)
VOLUME_TYPES = ("file", "block", "dir", "network", "netdir", "ploop")
_NO_TARGET = frozenset({"rbd", "sheepdog", "gluster", "iscsi-direct"})
_VOL_FEATURES = ("lazy_refcounts", "extended_l2")
_ENCRYPTION_FORMATS = ("default", "qcow", "luks", "luks2", "luks-any")

_POOL_ORDER = ("name", "uuid", "capacity", "allocation", "available", "features", "source", "target", "refresh")
_SOURCE_ORDER = (
    "host", "device", "dir", "adapter", "name", "initiator", "format", "auth", "protocol", "vendor", "product",
)
_VOLUME_ORDER = ("name", "key", "source", "capacity", "allocation", "physical", "target", "backingStore")
_VOL_TARGET_ORDER = (
    "path", "format", "permissions", "timestamps", "encryption", "compat", "clusterSize", "features",
)
_POOL_SINGLETONS = frozenset(_POOL_ORDER)
_SOURCE_SINGLETONS = frozenset(_SOURCE_ORDER) - {"host", "device"}
_VOLUME_SINGLETONS = frozenset(_VOLUME_ORDER)
_VOL_TARGET_SINGLETONS = frozenset(_VOL_TARGET_ORDER)
_UNSIGNED_MAX = 0xFFFFFFFF
_LLONG_MAX = (1 << 63) - 1
_ULLONG_MAX = (1 << 64) - 1


def scale_size(value: int, unit: str | None, limit: int = _LLONG_MAX, domain: ErrorDomain = _D) -> int:
    """``virScaleInteger`` with scale 1: ``value`` ``unit`` ('KiB', 'G', 'MB', 'bytes'...) in bytes."""
    if not unit or unit.lower() in ("b", "byte", "bytes"):
        scale = 1
    else:
        if len(unit) == 1 or unit[1:].lower() == "ib":
            base = 1024
        elif unit[1].lower() == "b" and len(unit) == 2:
            base = 1000
        else:
            raise fail(domain, f"unknown suffix '{unit}'", ErrorNumber.INVALID_ARG)
        power = "kmgtpe".find(unit[0].lower()) + 1
        if power == 0:
            raise fail(domain, f"unknown suffix '{unit}'", ErrorNumber.INVALID_ARG)
        scale = base**power
    if value and value > limit // scale:
        raise fail(domain, f"value too large: {value}{unit or ''}", ErrorNumber.OVERFLOW)
    return value * scale


def sanitize_path(path: str) -> str:
    """``virFileSanitizePath``: squash repeated slashes, drop a trailing one (``//x`` is kept)."""
    lead = "/" if path.startswith("//") and not path.startswith("///") else ""
    squashed = re.sub("/{2,}", "/", path)
    if len(squashed) > 1 and squashed.endswith("/"):
        squashed = squashed[:-1]
    return lead + squashed if squashed != "/" or not lead else "//"


def _parse_size(elem: Element | None, what: str) -> int | None:
    if elem is None:
        return None
    text = "".join(str(t) for t in elem.itertext()) or None
    if text is None:
        return None
    value = parse_ull(text)
    if value is None:
        raise fail(_D, "malformed capacity element")
    return scale_size(value, attr(elem, "unit"))


def _parse_perms(owner: Element) -> None:
    """``virStorageDefParsePerms`` + its formatter, on ``owner``'s ``<permissions>``."""
    perms = only_first(owner, "permissions")
    if perms is None:
        return
    mode: int | None = None
    mode_s = child_text(perms, "mode")
    if mode_s is not None:
        mode = parse_int(mode_s, 8)
        if mode is None or mode & ~0o777:
            raise fail(_D, "malformed octal mode")
    ids: dict[str, int] = {}
    for tag in ("owner", "group"):
        el = perms.find(tag)
        if el is None:
            continue
        value = parse_int("".join(str(t) for t in el.itertext()), 10, bits=64)
        if value is None or (value != -1 and not 0 <= value <= _UNSIGNED_MAX):
            raise fail(_D, f"malformed {tag} element")
        value &= _UNSIGNED_MAX
        if value != _UNSIGNED_MAX:
            ids[tag] = value - (1 << 32) if value >= 1 << 31 else value
    label = child_text(perms, "label")
    set_text(perms, "mode", None if mode is None else "0" + format(mode, "o"))
    for tag in ("owner", "group"):
        set_text(perms, tag, str(ids[tag]) if tag in ids else None)
    set_text(perms, "label", label)
    perms.attrib.clear()
    arrange(perms, ("mode", "owner", "group", "label"))
    if len(perms) == 0:
        owner.remove(perms)


def _parse_secret_lookup(secret: Element, keep_type: bool) -> None:
    uuid_s = secret.get("uuid")
    usage = secret.get("usage")
    if uuid_s is None and usage is None:
        raise fail(_D, "missing uuid or usage attribute in secret")
    if uuid_s is not None and usage is not None:
        raise fail(_D, "either uuid or usage attribute must be specified in secret, not both")
    canonical = parse_uuid(uuid_s) if uuid_s is not None else None
    if uuid_s is not None and canonical is None:
        raise fail(_D, f"invalid secret uuid '{uuid_s}'")
    set_attrs(secret, [("type", secret.get("type") if keep_type else None), ("uuid", canonical), ("usage", usage)])


def _parse_auth(auth: Element) -> None:
    username = attr(auth, "username")
    if username is None:
        raise fail(_D, "missing username for auth")
    auth_type = auth.get("type")
    if auth_type is not None and auth_type not in ("none", "chap", "ceph"):
        raise fail(_D, f"unknown auth type '{auth_type}'", ErrorNumber.CONFIG_UNSUPPORTED)
    if auth_type in (None, "none"):
        raise fail(_D, "storage pool missing auth type", ErrorNumber.CONFIG_UNSUPPORTED)
    secret = only_first(auth, "secret")
    if secret is None:
        raise fail(_D, "Missing <secret> element in auth")
    _parse_secret_lookup(secret, keep_type=True)
    set_attrs(auth, [("type", auth_type), ("username", username)])
    arrange(auth, ("secret",))


def _validate_wwn(wwn: str) -> None:
    digits = wwn[2:] if wwn.startswith("0x") else wwn
    if len(digits) != 16 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise fail(_D, f"Malformed wwn: {wwn}")


def _parse_adapter(adapter: Element) -> None:
    """``virStorageAdapterParseXML`` + ``virStorageAdapterValidate`` + its formatter."""
    kind = adapter.get("type")
    if kind is not None and kind not in ("scsi_host", "fc_host"):
        raise fail(_D, f"Invalid value for attribute 'type' in element 'adapter': '{kind}'.")
    if kind is None:
        if adapter.get("wwnn") is not None or adapter.get("wwpn") is not None or adapter.get("parent") is not None:
            raise fail(_D, "Use of 'wwnn', 'wwpn', and 'parent' attributes requires use of the adapter 'type'")
        if adapter.find("parentaddr") is not None:
            raise fail(_D, "Use of 'parentaddr' element requires use of the adapter 'type'")
        if adapter.get("name") is None:
            raise fail(_D, "missing storage pool source adapter")
        kind = "scsi_host"
    if kind == "fc_host":
        managed = tristate(adapter, "managed", _D)
        keys = ("parent", "parent_wwnn", "parent_wwpn", "parent_fabric_wwn", "wwnn", "wwpn")
        values = {k: adapter.get(k) for k in keys}
        wwnn, wwpn = values["wwnn"], values["wwpn"]
        if wwnn is None or wwpn is None:
            raise fail(_D, "'wwnn' and 'wwpn' must be specified for adapter type 'fchost'")
        _validate_wwn(wwnn)
        _validate_wwn(wwpn)
        if values["parent_wwnn"] and not values["parent_wwpn"]:
            raise fail(_D, f"when providing parent_wwnn='{values['parent_wwnn']}', "
                           "the parent_wwpn must also be provided")
        if values["parent_wwpn"] and not values["parent_wwnn"]:
            raise fail(_D, f"when providing parent_wwpn='{values['parent_wwpn']}', "
                           "the parent_wwnn must also be provided")
        for key in ("parent_wwnn", "parent_wwpn", "parent_fabric_wwn"):
            if values[key]:
                _validate_wwn(values[key] or "")
        set_attrs(adapter, [
            ("type", kind), ("name", None), ("parent", values["parent"]), ("parent_wwnn", values["parent_wwnn"]),
            ("parent_wwpn", values["parent_wwpn"]), ("parent_fabric_wwn", values["parent_fabric_wwn"]),
            ("managed", managed), ("wwnn", wwnn), ("wwpn", wwpn),
        ])
        drop(adapter, "parentaddr")
        return
    name = adapter.get("name")
    paddr = only_first(adapter, "parentaddr")
    if paddr is not None:
        addr = only_first(paddr, "address")
        if addr is None:
            raise fail(_D, "Missing scsi_host PCI address element")
        dom, bus, slot, func = parse_pci_address(addr, _D)
        unique = parse_int(paddr.get("unique_id"))
        if unique is None or unique < 0:
            raise fail(_D, "Missing or invalid scsi adapter 'unique_id' value")
        if name is not None:
            raise fail(_D, "Both 'name' and 'parent' cannot be specified for the 'scsi_host' adapter")
        set_attrs(paddr, [("unique_id", str(unique))])
        addr.attrib.clear()
        for key, value in (("domain", f"0x{dom:04x}"), ("bus", f"0x{bus:02x}"), ("slot", f"0x{slot:02x}"),
                           ("function", f"0x{func}")):
            addr.set(key, value)
        arrange(paddr, ("address",))
    elif name is None:
        raise fail(_D, "Either 'name' or 'parent' must be specified for the 'scsi_host' adapter")
    set_attrs(adapter, [(k, None) for k in ("parent", "parent_wwnn", "parent_wwpn", "parent_fabric_wwn",
                                            "managed", "wwnn", "wwpn")])
    set_attrs(adapter, [("type", kind), ("name", name)])


@attrs.frozen
class PoolSourceHost:
    name: str
    port: int | None = None


class _StorageDocument(XMLDocument):
    """What pools and volumes share: a ``<name>``, and sizes kept in bytes as
    ``<capacity unit='bytes'>``-style children placed in the document's ``ORDER``."""

    ORDER: ClassVar[tuple[str, ...]] = ()

    __slots__ = ()

    @property
    def name(self) -> str:
        return self.root.findtext("name") or ""

    def _size(self, tag: str) -> int:
        return int(self.root.findtext(tag) or 0)

    def _set_size(self, tag: str, value: int) -> None:
        if value < 0:
            raise fail(_D, f"{tag} must not be negative", ErrorNumber.INVALID_ARG)
        el = set_text(self.root, tag, str(value))
        assert el is not None
        el.set("unit", "bytes")
        arrange(self.root, self.ORDER)

    @property
    def capacity(self) -> int:
        return self._size("capacity")

    @capacity.setter
    def capacity(self, value: int) -> None:
        self._set_size("capacity", value)

    @property
    def allocation(self) -> int:
        return self._size("allocation")

    @allocation.setter
    def allocation(self, value: int) -> None:
        self._set_size("allocation", value)


class PoolDocument(_StorageDocument):
    """A ``<pool>`` definition.  ``capacity``/``allocation``/``available`` are runtime values:
    like libvirt the parser ignores them (they read 0) and drivers set them."""

    ROOT: ClassVar[str] = "pool"
    ERROR_DOMAIN: ClassVar[ErrorDomain] = _D
    SCHEMA: ClassVar[str] = "storagepool"
    ORDER: ClassVar[tuple[str, ...]] = _POOL_ORDER

    __slots__ = ()

    def post_parse(self, **options: Any) -> None:
        root = self.root
        strip_blanks(root)
        kind = root.get("type")
        if kind is None:
            raise fail(_D, "Missing required attribute 'type' in element 'pool'")
        info = _POOLS.get(kind)
        if info is None:
            raise fail(_D, f"Invalid value for attribute 'type' in element 'pool': '{kind}'.")
        dedupe(root, _POOL_SINGLETONS)
        hoist_namespaces(root)

        source = root.find("source")
        if source is None:
            source = sub(root, "source")
        src_name = self._parse_source(kind, info, source)

        name = child_text(root, "name")
        if name is None and info.flags & _NAME:
            name = src_name
        if name is None:
            raise fail(_D, "missing pool source name element")
        if "/" in name:
            raise fail(_D, f"name {name} cannot contain '/'")
        refuse_dot_name(name, "pool", _D)
        set_text(root, "name", name)

        raw_uuid = child_text(root, "uuid")
        if raw_uuid is None:
            set_text(root, "uuid", new_uuid())
        else:
            canonical = parse_uuid(raw_uuid)
            if canonical is None:
                raise fail(_D, "malformed uuid element")
            set_text(root, "uuid", canonical)

        for tag in ("capacity", "allocation", "available"):
            set_text(root, tag, "0")
            el = root.find(tag)
            assert el is not None
            el.set("unit", "bytes")

        features = root.find("features")
        if features is not None:
            cow = only_first(features, "cow")
            state = tristate(cow, "state", _D)
            if state is not None and kind not in ("fs", "dir"):
                raise fail(_D, "cow feature may only be used for 'fs' and 'dir' pools", ErrorNumber.NO_SUPPORT)
            if state is None:
                root.remove(features)
            else:
                assert cow is not None
                set_attrs(cow, [("state", state)])
                arrange(features, ("cow",))

        if info.flags & _HOST and source.find("host") is None:
            raise fail(_D, "missing storage pool source host name")
        if info.flags & _DIR and source.find("dir") is None:
            raise fail(_D, "missing storage pool source path")
        if info.flags & _NAME and src_name is None:
            src_name = name
            set_text(source, "name", name)
            arrange(source, _SOURCE_ORDER)
        if info.flags & _ADAPTER and source.find("adapter") is None:
            raise fail(_D, "missing storage pool source adapter")
        if info.flags == _DEVICE and source.find("device") is None:
            raise fail(_D, "missing storage pool source device name")

        target = root.find("target")
        if info.flags & _NETWORK:
            if target is not None:
                root.remove(target)
        else:
            if kind == "logical":
                path: str | None = f"/dev/{src_name}"
            elif kind == "zfs":
                path = f"/dev/zvol/{src_name}"
            else:
                path = child_text(target, "path") if target is not None else None
                if path is None:
                    raise fail(_D, "missing storage pool target path")
            assert path is not None
            if target is None:
                target = sub(root, "target")
            target.attrib.clear()
            set_text(target, "path", sanitize_path(path))
            _parse_perms(target)
            for child in list(target):
                if child.tag not in ("path", "permissions") and isinstance(child.tag, str) and child.tag[0] != "{":
                    target.remove(child)
            arrange(target, ("path", "permissions"))

        if kind == "iscsi-direct" and source.find("initiator") is None:
            raise fail(_D, "missing initiator IQN", ErrorNumber.CONFIG_UNSUPPORTED)

        refresh = root.find("refresh")
        if refresh is not None:
            vol = only_first(refresh, "volume")
            alloc = attr(vol, "allocation")
            if alloc is None:
                root.remove(refresh)
            elif alloc not in ("default", "capacity"):
                raise fail(_D, f"unknown storage pool volume refresh allocation type {alloc}",
                           ErrorNumber.CONFIG_UNSUPPORTED)
            else:
                assert vol is not None
                set_attrs(vol, [("allocation", alloc)])
                arrange(refresh, ("volume",))

        keep_open(source, 1)
        set_attrs(root, [("type", kind)])
        arrange(root, _POOL_ORDER)
        # Normalising may have dropped the only user of a namespace (an element inside <name>):
        # declare again only what is still used, or the next parse would differ.
        hoist_namespaces(root)

    @staticmethod
    def _parse_source(kind: str, info: _PoolType, source: Element) -> str | None:
        source.attrib.clear()
        dedupe(source, _SOURCE_SINGLETONS)
        name = child_text(source, "name")
        if kind == "rbd" and name is None:
            raise fail(_D, "element 'name' is mandatory for RBD pool")
        fmt_index = 0
        fmt: str | None = None
        if info.formats is not None:
            fmt = attr(source.find("format"), "type")
            if fmt is None:
                fmt = info.default_format
            elif fmt not in info.formats:
                raise fail(_D, f"unknown pool format type {fmt}", ErrorNumber.CONFIG_UNSUPPORTED)
            fmt_index = info.formats.index(fmt or "")
        for host in source.findall("host"):
            host_name = host.get("name")
            if host_name is None:
                raise fail(_D, "missing storage pool host name")
            port_s = host.get("port")
            port = 0
            if port_s is not None:
                parsed = parse_int(port_s)
                if parsed is None:
                    raise fail(_D, f"Invalid value for attribute 'port' in element 'host': '{port_s}'. "
                                   "Expected integer value")
                port = parsed
            set_attrs(host, [("name", host_name), ("port", str(port) if port else None)])
            drop(host, *[c.tag for c in host if isinstance(c.tag, str)])
        iqn = attr(source.find("initiator/iqn"), "name")
        for dev in source.findall("device"):
            path = dev.get("path")
            if path is None:
                raise fail(_D, "missing storage pool source device path")
            set_attrs(dev, [("path", path), ("part_separator", tristate(dev, "part_separator", _D))])
            drop(dev, "freeExtent")
        dir_path = attr(source.find("dir"), "path")
        if dir_path is not None:
            dir_path = sanitize_path(dir_path)
        elif kind == "gluster":
            dir_path = "/"
        adapter = source.find("adapter")
        if adapter is not None:
            _parse_adapter(adapter)
        auth = source.find("auth")
        if auth is not None:
            _parse_auth(auth)
        proto = attr(source.find("protocol"), "ver")
        if proto is not None:
            if fmt_index not in (0, 1):
                shown = _NETFS_FORMATS[fmt_index] if fmt_index < len(_NETFS_FORMATS) else fmt
                raise fail(_D, f"storage pool protocol ver unsupported for pool type '{shown}'",
                           ErrorNumber.CONFIG_UNSUPPORTED)
            if "," in proto:
                raise fail(_D, f"storage pool protocol ver '{proto}' must not contain ','", ErrorNumber.XML_DETAIL)
        vendor = attr(source.find("vendor"), "name")
        product = attr(source.find("product"), "name")

        # rebuild in libvirt's order: only what the pool type formats
        flags = info.flags
        if not flags & _HOST:
            drop(source, "host")
        if not flags & _DEVICE:
            drop(source, "device")
        drop(source, "dir")
        if flags & _DIR and dir_path is not None:
            sub(source, "dir", {"path": dir_path})
        if not flags & _ADAPTER:
            drop(source, "adapter")
        set_text(source, "name", name if flags & _NAME else None)
        drop(source, "initiator")
        if flags & _IQN and iqn is not None:
            sub(sub(source, "initiator"), "iqn", {"name": iqn})
        drop(source, "format")
        if fmt is not None:
            sub(source, "format", {"type": fmt})
        for tag, value, key in (("protocol", proto, "ver"), ("vendor", vendor, "name"), ("product", product, "name")):
            drop(source, tag)
            if value is not None:
                sub(source, tag, {key: value})
        arrange(source, _SOURCE_ORDER)
        return name

    def to_string(self, **options: Any) -> str:
        out = [open_tag(self.root, ns_first=False) + ">"]
        for child in self.root:
            if isinstance(child.tag, str):
                format_element(child, 2, out)
        out.append("</pool>")
        return "\n".join(out) + "\n"

    # ---------------------------------------------------------------- accessors
    @property
    def uuid(self) -> str:
        return self.root.findtext("uuid") or ""

    @property
    def type(self) -> str:
        return self.root.get("type") or ""

    @property
    def target_path(self) -> str | None:
        return self.root.findtext("target/path") or None

    @target_path.setter
    def target_path(self, value: str | None) -> None:
        target = self.root.find("target")
        if value is None:
            if target is not None:
                drop(target, "path")
            return
        if target is None:
            target = sub(self.root, "target")
            arrange(self.root, _POOL_ORDER)
        set_text(target, "path", sanitize_path(value))
        arrange(target, ("path", "permissions"))

    @property
    def source_device_paths(self) -> tuple[str, ...]:
        return tuple(d.get("path", "") for d in self.root.findall("source/device"))

    @property
    def source_name(self) -> str | None:
        return self.root.findtext("source/name") or None

    @property
    def source_dir(self) -> str | None:
        return attr(self.root.find("source/dir"), "path")

    @property
    def source_format(self) -> str | None:
        return attr(self.root.find("source/format"), "type")

    @property
    def source_hosts(self) -> tuple[PoolSourceHost, ...]:
        return tuple(PoolSourceHost(h.get("name", ""), int(h.get("port", "0")) or None)
                     for h in self.root.findall("source/host"))

    @property
    def available(self) -> int:
        return self._size("available")

    @available.setter
    def available(self, value: int) -> None:
        self._set_size("available", value)

    @property
    def volume_formats(self) -> tuple[str, ...] | None:
        """Volume formats of this pool type (None: its volumes have no format)."""
        info = _POOLS.get(self.type)
        return info.vol_formats if info is not None else None


class VolumeDocument(_StorageDocument):
    """A ``<volume>`` definition, parsed in the context of its pool.

    Options of :meth:`from_string`: ``pool`` (a :class:`PoolDocument`) or ``pool_type`` (default
    ``'dir'``); ``no_capacity=True`` (``VIR_VOL_XML_PARSE_NO_CAPACITY``), ``opt_capacity=True``
    (``VIR_VOL_XML_PARSE_OPT_CAPACITY``: capacity may be left out when there is a backing store);
    ``validate=True`` (``storagevol.rng``).
    """

    ROOT: ClassVar[str] = "volume"
    ERROR_DOMAIN: ClassVar[ErrorDomain] = _D
    SCHEMA: ClassVar[str] = "storagevol"
    ORDER: ClassVar[tuple[str, ...]] = _VOLUME_ORDER

    __slots__ = ("pool_type",)

    def __init__(self, root: Element, pool_type: str = "dir") -> None:
        super().__init__(root)
        self.pool_type = pool_type

    def copy(self) -> Self:
        dup = super().copy()
        dup.pool_type = self.pool_type
        return dup

    def post_parse(self, **options: Any) -> None:
        pool = options.get("pool")
        pool_type = pool.type if isinstance(pool, PoolDocument) else options.get("pool_type") or "dir"
        info = _POOLS.get(pool_type)
        if info is None:
            raise fail(_D, f"missing backend for pool type {pool_type}", ErrorNumber.INTERNAL_ERROR)
        self.pool_type = pool_type
        root = self.root
        strip_blanks(root)
        dedupe(root, _VOLUME_SINGLETONS)
        name = child_text(root, "name")
        if name is None:
            raise fail(_D, "missing volume name element")
        set_text(root, "name", name)
        set_text(root, "key", child_text(root, "key"))
        kind = root.get("type") or None
        if kind is not None and kind not in VOLUME_TYPES:
            raise fail(_D, f"unknown volume type '{kind}'", ErrorNumber.CONFIG_UNSUPPORTED)
        set_attrs(root, [("type", kind or "file")])
        drop(root, "source", "physical")

        backing = root.find("backingStore")
        has_backing = backing is not None and child_text(backing, "path") is not None
        if backing is not None:
            if not has_backing:
                root.remove(backing)
            else:
                self._parse_target(info, backing, is_backing=True)

        capacity = _parse_size(root.find("capacity"), "capacity")
        if capacity is None:
            if not options.get("no_capacity") and not (options.get("opt_capacity") and has_backing):
                raise fail(_D, "missing capacity element")
            capacity = 0
        allocation = _parse_size(root.find("allocation"), "allocation")
        if allocation is None:
            allocation = capacity
        for tag, value in (("capacity", capacity), ("allocation", allocation)):
            el = set_text(root, tag, str(value))
            assert el is not None
            el.set("unit", "bytes")

        target = root.find("target")
        if target is None:
            target = sub(root, "target")
        self._parse_target(info, target, is_backing=False)
        arrange(root, _VOLUME_ORDER)

    @staticmethod
    def _parse_target(info: _PoolType, target: Element, is_backing: bool) -> None:
        target.attrib.clear()
        dedupe(target, _VOL_TARGET_SINGLETONS)
        set_text(target, "path", child_text(target, "path"))
        fmt_el = target.find("format")
        if info.vol_formats is not None:
            fmt = attr(fmt_el, "type")
            if fmt is None:
                fmt = info.vol_default
            elif fmt not in info.vol_formats or (info.vol_formats is _FILE_FORMATS and fmt == "none"):
                raise fail(_D, f"unknown volume format type {fmt}", ErrorNumber.CONFIG_UNSUPPORTED)
            drop(target, "format")
            sub(target, "format", {"type": fmt or ""})
        else:
            drop(target, "format")
        _parse_perms(target)
        drop(target, "timestamps", "nocow")
        if is_backing:
            drop(target, "encryption", "compat", "clusterSize", "features")
            arrange(target, _VOL_TARGET_ORDER)
            return
        enc = target.find("encryption")
        if enc is not None:
            _parse_encryption(enc)
        compat = child_text(target, "compat")
        if compat is not None:
            major, dot, minor = compat.partition(".")
            if not dot or parse_uint(major) is None or parse_uint(minor) is None:
                raise fail(_D, "forbidden characters in 'compat' attribute")
        cluster_el = target.find("clusterSize")
        cluster = 0
        if cluster_el is not None:
            raw = child_text(target, "clusterSize")
            if raw is not None:
                value = parse_ull(raw)
                if value is None:
                    raise fail(_D, "could not parse element ./target/clusterSize")
                cluster = scale_size(value, attr(cluster_el, "unit"), _ULLONG_MAX)
        el = set_text(target, "clusterSize", str(cluster) if cluster > 0 else None)
        if el is not None:
            el.set("unit", "B")
        features = target.find("features")
        if features is not None:
            if compat is None:
                compat = "1.1"
            names = set()
            for feat in features:
                if not isinstance(feat.tag, str):
                    continue
                if feat.tag not in _VOL_FEATURES:
                    raise fail(_D, f"unsupported feature {feat.tag}", ErrorNumber.CONFIG_UNSUPPORTED)
                names.add(feat.tag)
            for child in list(features):
                features.remove(child)
            features.attrib.clear()
            features.text = None
            for feat_name in _VOL_FEATURES:
                if feat_name in names:
                    sub(features, feat_name)
        set_text(target, "compat", compat)
        arrange(target, _VOL_TARGET_ORDER)

    # ---------------------------------------------------------------- accessors
    @property
    def type(self) -> str:
        return self.root.get("type") or "file"

    @property
    def key(self) -> str | None:
        return self.root.findtext("key") or None

    @key.setter
    def key(self, value: str | None) -> None:
        set_text(self.root, "key", value)
        arrange(self.root, _VOLUME_ORDER)

    @property
    def target_path(self) -> str | None:
        return self.root.findtext("target/path") or None

    @target_path.setter
    def target_path(self, value: str | None) -> None:
        target = self.root.find("target")
        assert target is not None
        set_text(target, "path", value)
        arrange(target, _VOL_TARGET_ORDER)

    @property
    def format_type(self) -> str | None:
        return attr(self.root.find("target/format"), "type")

    @format_type.setter
    def format_type(self, value: str | None) -> None:
        target = self.root.find("target")
        assert target is not None
        drop(target, "format")
        if value is not None:
            sub(target, "format", {"type": value})
            arrange(target, _VOL_TARGET_ORDER)

    @property
    def backing_path(self) -> str | None:
        return self.root.findtext("backingStore/path") or None

    @property
    def backing_format(self) -> str | None:
        return attr(self.root.find("backingStore/format"), "type")

    @property
    def encryption_format(self) -> str | None:
        return attr(self.root.find("target/encryption"), "format")

    @property
    def physical(self) -> int | None:
        """Display-only ``<physical>`` size (set by drivers, never parsed)."""
        text = self.root.findtext("physical")
        return int(text) if text else None

    @physical.setter
    def physical(self, value: int | None) -> None:
        el = set_text(self.root, "physical", None if value is None else str(value))
        if el is not None:
            el.set("unit", "bytes")
        arrange(self.root, _VOLUME_ORDER)


def _parse_encryption(enc: Element) -> None:
    fmt = enc.get("format")
    if fmt is None:
        raise fail(_D, "Missing required attribute 'format' in element 'encryption'")
    if fmt not in _ENCRYPTION_FORMATS:
        raise fail(_D, f"Invalid value for attribute 'format' in element 'encryption': '{fmt}'.")
    engine = enc.get("engine")
    if engine is not None and engine not in ("qemu", "librbd"):
        raise fail(_D, f"Invalid value for attribute 'engine' in element 'encryption': '{engine}'.")
    set_attrs(enc, [("format", fmt), ("engine", engine)])
    for secret in enc.findall("secret"):
        stype = secret.get("type")
        if stype is None:
            raise fail(_D, "missing volume encryption secret type")
        if stype != "passphrase":
            raise fail(_D, f"unknown volume encryption secret type {stype}")
        _parse_secret_lookup(secret, keep_type=True)
    cipher = only_first(enc, "cipher")
    if cipher is not None:
        cname = attr(cipher, "name")
        if cname is None:
            raise fail(_D, "cipher element missing 'name' attribute")
        size = parse_uint(cipher.get("size"))
        if size is None:
            raise fail(_D, f"cipher element missing 'size' attribute or invalid size for cipher name '{cname}'")
        set_attrs(cipher, [("name", cname), ("size", str(size)), ("mode", cipher.get("mode")),
                           ("hash", cipher.get("hash"))])
    ivgen = only_first(enc, "ivgen")
    if ivgen is not None:
        iname = attr(ivgen, "name")
        if iname is None:
            raise fail(_D, "missing ivgen 'name' element")
        set_attrs(ivgen, [("name", iname), ("hash", ivgen.get("hash"))])
    arrange(enc, ("secret", "cipher", "ivgen"))
    if len(enc) == 0:
        keep_open(enc, 2)
