"""Build a test node from a libvirt test node file (``<node>``), or from our default one.

The node file format is libvirt's (``examples/xml/test/testnode.xml``): ``<cpu>`` and
``<memory>`` describe the host, and ``<domain>``, ``<network>``, ``<interface>``, ``<pool>``
(with ``<volume>`` children), ``<device>`` children are objects, inline or named by a
``file=`` attribute relative to the node file.  Our ``default.xml`` adds one element libvirt's
parser would ignore: ``<numa>`` with the NUMA cells ``test:///default`` has (see ``_host``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from virt import _records as R
from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._records import DomainState
from virt.drivers.test._state import DomainObj, NodeState, PendingDomainObj

if TYPE_CHECKING:  # lxml is imported when a node file is first parsed
    from virt.xml._base import Element

__all__ = ["child_xml", "default_node_info", "load_default", "load_file", "load_node"]


def default_node_info() -> R.NodeInfo:
    """libvirt's test driver defaults (``defaultNodeInfo``), for what a node file leaves out."""
    return R.NodeInfo(model="i686", memory=3 * 1024 * 1024, cpus=16, mhz=1400, nodes=2, sockets=2, cores=2,
                      threads=2)

_LONG = re.compile(r"\s*[+-]?\d+")


#: What ``default.xml`` says, as far as opening ``test:///default`` and listing its domains
#: need it: each domain's uuid and name (running, reason unknown, ids from 1; the node info is
#: the defaults).  The rest of the file is parsed on first use (see :func:`load_default`);
#: ``test_testdriver_host.py`` checks this against a whole parse.
DEFAULT_DOMAINS: tuple[tuple[str, str], ...] = (("6695eb01-f6a4-8304-79aa-97f2502e193f", "test"),)


def _default_text() -> str:
    # The file next to this module; importlib.resources (a few ms to import, on every CLI
    # start) only when the package is not installed as plain files.
    try:
        with open(os.path.join(os.path.dirname(__file__), "default.xml"), encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        from importlib.resources import files

        return files("virt.drivers.test").joinpath("default.xml").read_text(encoding="utf-8")


def load_default() -> NodeState:
    """The node of ``test:///default``, without parsing ``default.xml`` yet.

    Its domains are made from :data:`DEFAULT_DOMAINS` as :func:`load_node` would make them
    (running since the node was made), each a :class:`PendingDomainObj` whose definitions
    and snapshots come from a whole parse of the file the first time anything reads them;
    the host objects, networks and pools load on first use too (``NodeState.pending``)."""
    node = NodeState(key="default", node_info=default_node_info)
    parsed: list[NodeState] = []  # the file's own node, parsed whole when first needed

    def whole() -> NodeState:
        if not parsed:
            parsed.append(load_node(_default_text(), base_dir=None, key="default", lazy=True))
        return parsed[0]

    def fill(dom: DomainObj) -> None:
        source = whole().domains[dom.uuid]
        dom.persistent_def, dom.live_def = source.persistent_def, source.live_def
        dom.snapshots, dom.current_snapshot = source.snapshots, source.current_snapshot

    for area in ("host", "network", "storage"):
        node.pending[area] = _adopt(node, area, whole)
    for uuid, name in DEFAULT_DOMAINS:
        dom = PendingDomainObj(fill, uuid=uuid, name=name, state=DomainState.RUNNING)
        node.add_domain(dom)
        node.assign_id(dom)
    return node


_AREA_SLOTS = {"host": ("_cells", "_interfaces", "_nodedevs"),
               "network": ("_networks", "_network_names"),
               "storage": ("_pools", "_pool_names", "_volume_keys", "_volume_paths")}


def _adopt(node: NodeState, area: str, whole: Callable[[], NodeState]) -> Callable[[], None]:
    """Load ``area`` of the default node: the objects of the whole parse's own node, taken
    over (that node is never used otherwise)."""

    def load() -> None:
        source = whole()
        source.load_pending(area)
        for slot in _AREA_SLOTS[area]:
            setattr(node, slot, getattr(source, slot))

    return load


def load_file(path: str) -> NodeState:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise VirtError(ErrorNumber.OPEN_FAILED, f"{path}: {exc.strerror}", domain=ErrorDomain.TEST) from None
    return load_node(data, base_dir=os.path.dirname(path), key=path)


def _long(root: Element, path: str, what: str) -> int | None:
    """``virXPathLong`` on the first ``path`` element: None when absent or empty."""
    elem = root.find(path)
    text = (elem.text or "") if elem is not None else ""
    if not text:
        return None
    if not _LONG.fullmatch(text):
        raise VirtError(ErrorNumber.XML_ERROR, f"invalid node {what} value", domain=ErrorDomain.TEST)
    return int(text)


def _node_info(root: Element) -> R.NodeInfo:
    """``testParseNodeInfo``: the defaults overridden by what ``<cpu>``/``<memory>`` give."""
    base = default_node_info()
    nodes = _long(root, "cpu/nodes", "cpu nodes")
    sockets = _long(root, "cpu/sockets", "cpu sockets")
    cores = _long(root, "cpu/cores", "cpu cores")
    threads = _long(root, "cpu/threads", "cpu threads")
    info = {
        "nodes": base.nodes if nodes is None else nodes,
        "sockets": base.sockets if sockets is None else sockets,
        "cores": base.cores if cores is None else cores,
        "threads": base.threads if threads is None else threads,
    }
    cpus = info["cores"] * info["threads"] * info["sockets"] * info["nodes"]
    active = _long(root, "cpu/active", "cpu active")
    if active is not None and active < cpus:
        cpus = active
    mhz = _long(root, "cpu/mhz", "cpu mhz")
    memory = _long(root, "memory", "memory")
    model = root.find("cpu/model")
    model_text = model.text if model is not None and model.text is not None else base.model
    return R.NodeInfo(model=model_text, memory=base.memory if memory is None else memory, cpus=cpus,
                    mhz=base.mhz if mhz is None else mhz, **info)


def child_xml(elem: Element, base_dir: str | None) -> str:
    """An object's XML: inline, or from the file its ``file=`` attribute names.

    As in libvirt, an object read from a file is that file's document alone: children the
    ``<node>`` file gave the referring element (a ``<pool file=...>``'s ``<volume>``) are lost.
    """
    ref = elem.get("file")
    if ref is None:
        from virt.xml._base import format_element

        return "\n".join(format_element(elem)) + "\n"
    if base_dir is None:
        raise VirtError(ErrorNumber.XML_ERROR, f"cannot resolve file '{ref}'", domain=ErrorDomain.TEST)
    path = ref if os.path.isabs(ref) else os.path.join(base_dir, ref)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise VirtError(ErrorNumber.OPEN_FAILED, f"{path}: {exc.strerror}", domain=ErrorDomain.TEST) from None


def _later(load: Callable[[NodeState, Element, str | None], None], node: NodeState, root: Element,
           base_dir: str | None) -> Callable[[], None]:
    return lambda: load(node, root, base_dir)


def load_node(text: str | bytes, base_dir: str | None, key: str, lazy: bool = False) -> NodeState:
    """The node of a node file.  ``lazy`` (our own ``default.xml``, which is known to load)
    leaves the host objects, networks and pools to be loaded on first use; a user's file is
    loaded whole, so that its errors are reported when it is opened."""
    from virt.xml._base import parse_xml

    root = parse_xml(text, domain=ErrorDomain.TEST)
    if root.tag != "node":
        raise VirtError(ErrorNumber.XML_ERROR, "Root element is not 'node'", domain=ErrorDomain.TEST)
    node = NodeState(key=key, node_info=_node_info(root))
    # Each area loads its own objects (_host: NUMA cells, interfaces, node devices); domains
    # last, since they may refer to networks and pools (which then load on that first use).
    from virt.drivers.test import _domains, _host, _networks, _storage

    for area, load in (("host", _host.load_from_node), ("network", _networks.load_from_node),
                       ("storage", _storage.load_from_node)):
        if lazy:
            node.pending[area] = _later(load, node, root, base_dir)
        else:
            load(node, root, base_dir)
    _domains.load_from_node(node, root, base_dir)
    return node
