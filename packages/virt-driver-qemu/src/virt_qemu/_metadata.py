"""``virDomainSetMetadata`` / ``virDomainGetMetadata`` of the ``qemu:///`` driver.

As libvirt's ``virDomainObjSetMetadata``: ``VIR_DOMAIN_AFFECT_LIVE`` changes the live XML of a
running domain (``run/UUID.xml``), ``VIR_DOMAIN_AFFECT_CONFIG`` its definition file, and
``AFFECT_CURRENT`` (0) whichever the domain's state selects; both files are replaced
atomically under the domain's lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt._markers import hookimpl

if TYPE_CHECKING:
    from virt.xml.domain import DomainDocument

    from virt_qemu._store import Store

__all__ = ["MetadataMixin"]

_AFFECT_LIVE, _AFFECT_CONFIG = 1, 2
_META_DESCRIPTION, _META_TITLE, _META_ELEMENT = 0, 1, 2


def _arg_error(message: str) -> VirtError:
    return VirtError(ErrorNumber.INVALID_ARG, None, domain=ErrorDomain.DOMAIN, message=message)


def _check_flags(flags: int, function: str) -> None:
    extra = flags & ~(_AFFECT_LIVE | _AFFECT_CONFIG)
    if extra:
        message = f"unsupported flags (0x{extra:x}) in function {function}"
        raise VirtError(ErrorNumber.INVALID_ARG, message, domain=ErrorDomain.QEMU, message=message)


class MetadataMixin:
    """The metadata hooks of :class:`virt_qemu._driver.QemuConnection`."""

    if TYPE_CHECKING:
        store: Store

        def _defs(self, uuid: str, flags: int) -> tuple[DomainDocument | None, DomainDocument | None]: ...

    @hookimpl
    def virt_domain_set_metadata(self, uuid: str, type: int, metadata: str | None, key: str | None,
                                 uri: str | None, flags: int) -> None:
        _check_flags(flags, "qemuDomainSetMetadata")
        if type == _META_ELEMENT:
            if metadata and not key:
                raise _arg_error("key in virDomainSetMetadata must not be NULL")
            if not uri:
                raise _arg_error("uri in virDomainSetMetadata must not be NULL")
        elif type == _META_TITLE:
            if metadata and "\n" in metadata:
                raise _arg_error("metadata title can't contain newlines")
        elif type != _META_DESCRIPTION:
            raise VirtError(ErrorNumber.INVALID_ARG, f"unknown metadata type '{type}'", domain=ErrorDomain.DOMAIN)
        with self.store.lock(uuid):
            live, config = self._defs(uuid, flags)
            for doc in (live, config):
                if doc is not None:
                    doc.set_metadata(type, metadata, key, uri)
            if live is not None:
                self.store.write_live(uuid, live)
            if config is not None:
                self.store.write_config(config)

    @hookimpl
    def virt_domain_get_metadata(self, uuid: str, type: int, uri: str | None, flags: int) -> str:
        _check_flags(flags, "qemuDomainGetMetadata")
        if flags & _AFFECT_LIVE and flags & _AFFECT_CONFIG:
            raise _arg_error("Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive")
        live, config = self._defs(uuid, flags)
        doc = live if live is not None else config
        assert doc is not None
        if type == _META_TITLE:
            value = doc.title
        elif type == _META_DESCRIPTION:
            value = doc.description
        elif type == _META_ELEMENT:
            if not uri:
                raise _arg_error("uri in virDomainGetMetadata must not be NULL")
            value = doc.get_metadata_element(uri)
        else:
            raise VirtError(ErrorNumber.INVALID_ARG, f"unknown metadata type '{type}'", domain=ErrorDomain.DOMAIN)
        if value is None:
            raise VirtError(ErrorNumber.NO_DOMAIN_METADATA, "Requested metadata element is not present",
                            domain=ErrorDomain.DOMAIN)
        return str(value)
