"""Build a test node from a libvirt test node file (``<node>``), or from our default one."""

from __future__ import annotations

import os
from importlib.resources import files

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._records import NodeInfo
from virt.drivers.test._state import NodeState
from virt.xml._base import Element, format_element, parse_xml

__all__ = ["load_default", "load_file", "load_node"]


def load_default() -> NodeState:
    text = files("virt.drivers.test").joinpath("default.xml").read_text(encoding="utf-8")
    return load_node(text, base_dir=None, key="default")


def load_file(path: str) -> NodeState:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise VirtError(ErrorNumber.OPEN_FAILED, f"{path}: {exc.strerror}", domain=ErrorDomain.TEST) from None
    return load_node(data, base_dir=os.path.dirname(path), key=path)


def _int(root: Element, path: str, default: int) -> int:
    text = root.findtext(path)
    if text is None or not text.strip():
        return default
    try:
        return int(text.strip())
    except ValueError:
        raise VirtError(ErrorNumber.XML_ERROR, f"invalid node {path} value '{text.strip()}'",
                        domain=ErrorDomain.TEST) from None


def child_xml(elem: Element, base_dir: str | None) -> str:
    """An object's XML: inline, or from the file its ``file=`` attribute names."""
    ref = elem.get("file")
    if ref is None:
        return "\n".join(format_element(elem)) + "\n"
    if base_dir is None:
        raise VirtError(ErrorNumber.XML_ERROR, f"cannot resolve file '{ref}'", domain=ErrorDomain.TEST)
    path = ref if os.path.isabs(ref) else os.path.join(base_dir, ref)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise VirtError(ErrorNumber.OPEN_FAILED, f"{path}: {exc.strerror}", domain=ErrorDomain.TEST) from None


def load_node(text: str | bytes, base_dir: str | None, key: str) -> NodeState:
    root = parse_xml(text, root="node", domain=ErrorDomain.TEST)
    # libvirt's test driver defaults, for what a node file leaves out.
    info = NodeInfo(
        model=(root.findtext("cpu/model") or "i686").strip(),
        memory=_int(root, "memory", 2097152 * 4),
        cpus=_int(root, "cpu/active", 16),
        mhz=_int(root, "cpu/mhz", 1400),
        nodes=_int(root, "cpu/nodes", 2),
        sockets=_int(root, "cpu/sockets", 2),
        cores=_int(root, "cpu/cores", 2),
        threads=_int(root, "cpu/threads", 2),
    )
    node = NodeState(key=key, node_info=info)
    # Each area loads its own objects; domains last, since they may refer to networks/pools.
    from virt.drivers.test import _domains, _host, _networks, _storage

    for loader in (_host, _networks, _storage, _domains):
        load = getattr(loader, "load_from_node", None)
        if load is not None:
            load(node, root, base_dir)
    return node
