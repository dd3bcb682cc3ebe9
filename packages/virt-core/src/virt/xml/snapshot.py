"""Domain snapshot XML (``<domainsnapshot>``), parsed and formatted as libvirt's snapshot_conf.c.

Two parse modes, as in libvirt:

* a *new* snapshot (``virDomainSnapshotCreateXML`` without REDEFINE): only the user's part is
  read (name, description, memory, disks); state, parent, domain are the driver's to fill; the
  name defaults to the creation time (``creation_time=`` or now);
* ``redefine=True``: a full snapshot description as written by libvirt (name, state and
  creationTime required; an embedded ``<domain>`` is parsed as an inactive domain definition).

``internal=True`` (``VIR_DOMAIN_SNAPSHOT_PARSE_INTERNAL``) reads ``<active>``; formatting with
``internal=True`` writes it back.  ``to_string(domain_uuid=...)`` writes ``<domain><uuid>`` for a
snapshot that carries no domain definition, as libvirt does with its domain's UUID.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Final

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml._base import Element, XMLDocument, format_element, sub
from virt.xml._util import only_first, set_attrs, sort_children, text_of
from virt.xml.domain import DomainDocument, format_domain_lines

__all__ = ["SNAPSHOT_STATES", "SnapshotDocument"]

_D: Final = ErrorDomain.DOMAIN_SNAPSHOT
_E = ErrorNumber

#: virDomainSnapshotState
SNAPSHOT_STATES: Final = (
    "nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed", "pmsuspended",
    "disk-snapshot",
)
_MEMORY_MODES: Final = ("no", "internal", "external", "manual")
_DISK_MODES: Final = ("no", "internal", "external", "manual")
_DISK_TYPES: Final = ("file", "block", "dir", "network", "volume", "nvme", "vhostuser")
_ORDER: Final = {
    tag: i
    for i, tag in enumerate((
        "name", "description", "state", "parent", "creationTime", "memory", "disks", "domain",
        "inactiveDomain", "cookie", "active",
    ))
}


def _fail(detail: str, code: ErrorNumber = _E.XML_ERROR) -> VirtError:
    return VirtError(code, detail, domain=_D)


def _set_text(parent: Element, tag: str, value: str) -> Element:
    el = parent.find(tag)
    if el is None:
        el = sub(parent, tag)
    for child in list(el):
        el.remove(child)
    el.attrib.clear()
    el.text = value
    return el


def _is_blank(elem: Element) -> bool:
    return not elem.attrib and not any(isinstance(c.tag, str) for c in elem) and not (elem.text or "").strip()


class SnapshotDocument(XMLDocument):
    """A domain snapshot description (see the module docstring for the parse modes)."""

    ROOT: ClassVar[str] = "domainsnapshot"
    ERROR_DOMAIN: ClassVar[ErrorDomain] = ErrorDomain.DOMAIN_SNAPSHOT
    SCHEMA: ClassVar[str] = "domainsnapshot"

    __slots__ = ()

    # -- parsing ----------------------------------------------------------------------------

    def post_parse(self, **options: Any) -> None:
        """Options: ``redefine`` (bool), ``internal`` (bool), ``creation_time`` (int seconds,
        default now; new snapshots only), ``validate`` (bool: check domainsnapshot.rng)."""
        root = self.root
        redefine = bool(options.get("redefine", False))
        internal = bool(options.get("internal", False))
        root.attrib.clear()
        for tag in _ORDER:
            only_first(root, tag)

        creation = root.find("creationTime")
        if redefine:
            raw = text_of(creation)
            if raw is None:
                raise _fail("missing creationTime from existing snapshot")
            try:
                created = int(raw.strip())
            except ValueError:
                raise _fail(f"invalid creationTime '{raw}'") from None
            state = text_of(root.find("state"))
            if state is None:
                raise _fail("missing state from existing snapshot")
            if state not in SNAPSHOT_STATES:
                raise _fail(f"Invalid state '{state}' in domain snapshot XML")
            _set_text(root, "state", state)
            parent = root.find("parent")
            if parent is not None:
                pname = text_of(parent.find("name"))
                if pname is None:
                    root.remove(parent)
                else:
                    for child in list(parent):
                        parent.remove(child)
                    parent.attrib.clear()
                    sub(parent, "name", text=pname)
            for tag in ("domain", "inactiveDomain"):
                dom = root.find(tag)
                if dom is None:
                    continue
                if dom.get("type") is not None:
                    DomainDocument(dom).post_parse(inactive=True)
                elif tag == "domain":
                    uuid = text_of(dom.find("uuid"))
                    for child in list(dom):
                        dom.remove(child)
                    dom.attrib.clear()
                    if uuid is None:
                        root.remove(dom)
                    else:
                        sub(dom, "uuid", text=uuid.strip())
                else:
                    root.remove(dom)
        else:
            for tag in ("state", "parent", "creationTime", "domain", "inactiveDomain", "cookie"):
                el = root.find(tag)
                if el is not None:
                    root.remove(el)
            given = options.get("creation_time")
            created = int(given) if given is not None else int(time.time())
            state = None
        if created > 0:
            _set_text(root, "creationTime", str(created))
        elif root.find("creationTime") is not None:
            root.remove(root.find("creationTime"))  # type: ignore[arg-type]

        name = text_of(root.find("name"))
        if name is None:
            if redefine:
                raise _fail("a redefined snapshot must have a name")
            name = str(created)
        _set_text(root, "name", name)
        desc = root.find("description")
        if desc is not None:
            value = text_of(desc)
            if value is None:
                root.remove(desc)
            else:
                _set_text(root, "description", value)

        self._memory(state)
        self._disks()

        active = root.find("active")
        if active is not None:
            if internal:
                raw = (text_of(active) or "").strip()
                if raw not in ("0", "1"):
                    raise _fail("Could not find 'active' element")
                _set_text(root, "active", raw)
            else:
                root.remove(active)
        sort_children(root, _ORDER)

    def _memory(self, state: str | None) -> None:
        mem = self.root.find("memory")
        if mem is None:
            return
        mode = mem.get("snapshot")
        path = mem.get("file") or None
        if mode is not None and mode not in _MEMORY_MODES:
            raise _fail(f"unknown memory snapshot setting '{mode}'")
        if mode is None:
            mode = "external" if path else None
        if path and mode != "external":
            raise _fail(f"memory filename '{path}' requires external snapshot")
        if path and not path.startswith("/"):
            raise _fail(f"memory snapshot file path ({path}) must be absolute", _E.CONFIG_UNSUPPORTED)
        if mode in ("internal", "external") and state in ("shutoff", "disk-snapshot"):
            raise _fail("memory state cannot be saved with offline or disk-only snapshot", _E.CONFIG_UNSUPPORTED)
        if mode is None:
            self.root.remove(mem)
            return
        for child in list(mem):
            mem.remove(child)
        mem.text = None
        set_attrs(mem, [("snapshot", mode), ("file", path)])
        for k in list(mem.attrib):
            if k not in ("snapshot", "file"):
                del mem.attrib[k]

    def _disks(self) -> None:
        disks = self.root.find("disks")
        if disks is None:
            return
        disks.attrib.clear()
        for disk in disks:
            if not isinstance(disk.tag, str):
                continue
            if disk.tag != "disk":
                disks.remove(disk)
                continue
            name = disk.get("name")
            if not name:
                raise _fail("missing name from disk snapshot element")
            mode = disk.get("snapshot")
            if mode is not None and mode not in _DISK_MODES:
                raise _fail(f"unknown disk snapshot setting '{mode}'")
            dtype = disk.get("type")
            if dtype is not None and dtype not in _DISK_TYPES:
                raise _fail(f"unknown disk snapshot type '{dtype}'")
            source = only_first(disk, "source")
            driver = only_first(disk, "driver")
            if source is not None:
                if source.get("startupPolicy") is not None:
                    raise _fail("'startupPolicy' is not allowed in a snapshot disk's <source>",
                                _E.CONFIG_UNSUPPORTED)
                if (dtype or "file") == "network" and source.find("seclabel") is not None:
                    raise _fail("<seclabel> is not allowed in a network disk's <source>",
                                _E.CONFIG_UNSUPPORTED)
                if _is_blank(source):
                    disk.remove(source)
                    source = None
            if driver is not None:
                if driver.get("type") is None:
                    disk.remove(driver)
                    driver = None
                else:
                    set_attrs(driver, [("type", driver.get("type"))])
            if mode is None and (source is not None or driver is not None):
                mode = "external"
            if source is None and driver is None:
                for child in list(disk):
                    disk.remove(child)
                disk.text = None
                set_attrs(disk, [("name", name), ("snapshot", mode)])
                for k in list(disk.attrib):
                    if k not in ("name", "snapshot"):
                        del disk.attrib[k]
                continue
            set_attrs(disk, [("name", name), ("snapshot", mode), ("type", dtype or "file")])
            # <driver> first, then <source>, then whatever else libvirt kept
            if driver is not None:
                disk.insert(0, driver)
                if source is not None:
                    driver.addnext(source)
            elif source is not None:
                disk.insert(0, source)

    # -- formatting -------------------------------------------------------------------------

    def to_string(self, **options: Any) -> str:
        """``domain_uuid=``: the UUID written as ``<domain><uuid>`` when the snapshot carries no
        domain definition; ``internal=True`` writes ``<active>``."""
        internal = bool(options.get("internal", False))
        domain_uuid = options.get("domain_uuid")
        out: list[str] = ["<domainsnapshot>"]
        domain_rank = _ORDER["domain"]
        pending_uuid: str | None = None
        typed = self.root.find("domain[@type]")
        if typed is None:
            stub = self.root.find("domain")
            pending_uuid = domain_uuid or (text_of(stub.find("uuid")) if stub is not None else None)
        active_value = "0"
        for child in self.root:
            tag = str(child.tag) if isinstance(child.tag, str) else None
            if tag is None:
                continue
            if pending_uuid is not None and _ORDER.get(tag, -1) >= domain_rank:
                out += ["  <domain>", f"    <uuid>{pending_uuid}</uuid>", "  </domain>"]
                pending_uuid = None
            if tag == "active":
                active_value = (child.text or "0").strip()
            elif tag == "domain" and child.get("type") is None:
                continue
            elif tag in ("domain", "inactiveDomain") and child.get("type") is not None:
                format_domain_lines(child, 2, out)
            else:
                format_element(child, 2, out)
        if pending_uuid is not None:
            out += ["  <domain>", f"    <uuid>{pending_uuid}</uuid>", "  </domain>"]
        if internal:
            out.append(f"  <active>{active_value}</active>")
        if len(out) == 1:
            return "<domainsnapshot/>\n"
        out.append("</domainsnapshot>")
        return "\n".join(out) + "\n"

    # -- accessors --------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return text_of(self.root.find("name")) or ""

    @name.setter
    def name(self, value: str) -> None:
        if not value:
            raise VirtError(_E.INVALID_ARG, "snapshot name must not be empty", domain=_D)
        _set_text(self.root, "name", value)
        sort_children(self.root, _ORDER)

    @property
    def description(self) -> str | None:
        return text_of(self.root.find("description"))

    @description.setter
    def description(self, value: str | None) -> None:
        el = self.root.find("description")
        if not value:
            if el is not None:
                self.root.remove(el)
            return
        _set_text(self.root, "description", value)
        sort_children(self.root, _ORDER)

    @property
    def state(self) -> str | None:
        return text_of(self.root.find("state"))

    @state.setter
    def state(self, value: str | None) -> None:
        el = self.root.find("state")
        if value is None:
            if el is not None:
                self.root.remove(el)
            return
        if value not in SNAPSHOT_STATES:
            raise VirtError(_E.INVALID_ARG, f"Invalid state '{value}' in domain snapshot XML", domain=_D)
        _set_text(self.root, "state", value)
        sort_children(self.root, _ORDER)

    @property
    def creation_time(self) -> int | None:
        raw = text_of(self.root.find("creationTime"))
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return None

    @creation_time.setter
    def creation_time(self, value: int) -> None:
        _set_text(self.root, "creationTime", str(int(value)))
        sort_children(self.root, _ORDER)

    @property
    def parent(self) -> str | None:
        return text_of(self.root.find("parent/name"))

    @parent.setter
    def parent(self, value: str | None) -> None:
        el = self.root.find("parent")
        if el is not None:
            self.root.remove(el)
        if value:
            sub(sub(self.root, "parent"), "name", text=value)
            sort_children(self.root, _ORDER)

    @property
    def memory_snapshot(self) -> str | None:
        mem = self.root.find("memory")
        return mem.get("snapshot") if mem is not None else None

    @property
    def current(self) -> bool:
        """``<active>1</active>`` (only kept with ``internal=True``)."""
        return (text_of(self.root.find("active")) or "").strip() == "1"

    @current.setter
    def current(self, value: bool) -> None:
        _set_text(self.root, "active", "1" if value else "0")
        sort_children(self.root, _ORDER)

    def domain(self) -> DomainDocument | None:
        """The embedded domain definition (a copy), or None."""
        dom = self.root.find("domain")
        if dom is None or dom.get("type") is None:
            return None
        import copy

        return DomainDocument(copy.deepcopy(dom))

    def set_domain(self, domain: DomainDocument | None, *, inactive: DomainDocument | None = None) -> None:
        """Embed (a copy of) ``domain`` (and ``inactive``, the inactive definition)."""
        import copy

        for tag, doc in (("domain", domain), ("inactiveDomain", inactive)):
            old = self.root.find(tag)
            if old is not None:
                self.root.remove(old)
            if doc is None:
                continue
            el = copy.deepcopy(doc.root)
            el.tag = tag
            el.tail = None
            self.root.append(el)
        sort_children(self.root, _ORDER)

