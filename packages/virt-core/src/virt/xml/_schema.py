"""RelaxNG validation against libvirt's schemas (``domain.rng``, ``network.rng`` ...).

The schemas are not shipped with virt; they are looked up, in order, in ``$VIRT_SCHEMA_DIR``,
in ``/usr/share/libvirt/schemas`` (Debian's libvirt packages) and in the conformance corpus
checked out next to the repository (``../shared/conformance/schemas``).  A compiled schema is
cached per (directory, name): compiling ``domain.rng`` costs ~10 ms, validating a domain well
under one.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from lxml import etree

from virt._errors import ErrorDomain, ErrorNumber, VirtError
from virt.xml._base import Element

__all__ = ["SCHEMA_NAMES", "schema_dir", "validate"]

#: the top-level grammars (the others are include-only and have no <start>)
SCHEMA_NAMES = frozenset({
    "domain", "domainsnapshot", "domaincheckpoint", "domainbackup", "domaincaps", "network",
    "networkport", "storagepool", "storagevol", "storagepoolcaps", "nodedev", "capability",
    "interface", "secret", "nwfilter", "nwfilterbinding", "cpu", "inactiveDomain",
})

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_SYSTEM_DIR = Path("/usr/share/libvirt/schemas")


def _candidates() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("VIRT_SCHEMA_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(_SYSTEM_DIR)
    # .../packages/virt-core/src/virt/xml/_schema.py -> the repository is parents[5]; the
    # corpus lives beside it (…/shared/conformance/schemas).
    here = Path(__file__).resolve()
    for up in here.parents:
        probe = up.parent / "shared" / "conformance" / "schemas"
        if probe.is_dir():
            dirs.append(probe)
            break
    return dirs


def schema_dir() -> Path:
    """The directory the schemas are read from, or ``VirtError(NO_SUPPORT)`` if there is none."""
    for candidate in _candidates():
        if (candidate / "domain.rng").is_file() or (candidate / "basictypes.rng").is_file():
            return candidate
    raise VirtError(
        ErrorNumber.NO_SUPPORT,
        "no RelaxNG schema directory found (set VIRT_SCHEMA_DIR or install libvirt's schemas "
        "in /usr/share/libvirt/schemas)",
        domain=ErrorDomain.XML,
    )


@functools.cache
def _load(directory: str, name: str) -> etree.RelaxNG:
    path = Path(directory) / f"{name}.rng"
    if not path.is_file():
        raise VirtError(ErrorNumber.NO_SUPPORT, f"schema '{name}' not found in {directory}", domain=ErrorDomain.XML)
    try:
        return etree.RelaxNG(etree.parse(str(path)))
    except (etree.RelaxNGParseError, etree.XMLSyntaxError, OSError) as exc:
        raise VirtError(
            ErrorNumber.INTERNAL_ERROR, f"unable to load schema {path}: {exc}", domain=ErrorDomain.XML
        ) from None


def validate(elem: Element, schema: str) -> None:
    """Validate ``elem`` against libvirt's ``<schema>.rng``.

    :raises VirtError: ``XML_INVALID_SCHEMA`` with the first validation error (as libvirt's
        ``virXMLValidateAgainstSchema`` reports it); ``NO_SUPPORT`` if no schema can be found;
        ``INVALID_ARG`` for a malformed schema name.
    """
    if not _NAME_RE.match(schema):
        raise VirtError(ErrorNumber.INVALID_ARG, f"invalid schema name '{schema}'", domain=ErrorDomain.XML)
    rng = _load(str(schema_dir()), schema)
    if rng.validate(elem):
        return
    log = rng.error_log
    first = log[0] if len(log) else None
    if first is None:
        detail = f"Unable to validate doc against {schema}.rng"
    else:
        where = f"{first.path}: " if first.path else ""
        detail = f"Unable to validate doc against {schema}.rng\n{where}{first.message}"
    raise VirtError(ErrorNumber.XML_INVALID_SCHEMA, detail, domain=ErrorDomain.XML)
