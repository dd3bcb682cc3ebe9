"""Secret XML (``<secret>``), kept whole; the top-level form is normalised as libvirt's
``virSecretDefFormat`` prints it (``ephemeral``/``private`` always present, a generated UUID when
none is given, ``uuid``/``description``/``usage`` in that order)."""

from __future__ import annotations

from typing import Any, ClassVar

from virt._errors import ErrorDomain, ErrorNumber
from virt.xml._base import XMLDocument
from virt.xml._util import arrange, child_text, fail, new_uuid, parse_uuid, set_attrs, set_text

__all__ = ["USAGE_TYPES", "SecretDocument"]

_D = ErrorDomain.SECRET
# usage type -> the element naming what the secret is used for
USAGE_TYPES = {"volume": "volume", "ceph": "name", "iscsi": "target", "tls": "name", "vtpm": "name"}


class SecretDocument(XMLDocument):
    """A secret definition.  ``validate=True`` checks ``secret.rng``."""

    ROOT: ClassVar[str] = "secret"
    ERROR_DOMAIN: ClassVar[ErrorDomain] = _D
    SCHEMA: ClassVar[str] = "secret"

    __slots__ = ()

    def post_parse(self, **options: Any) -> None:
        root = self.root
        flags = []
        for key in ("ephemeral", "private"):
            value = root.get(key, "no")
            if value not in ("yes", "no"):
                raise fail(_D, f"invalid value of '{key}'")
            flags.append((key, value))
        set_attrs(root, flags)
        raw = child_text(root, "uuid")
        if raw is None:
            set_text(root, "uuid", new_uuid())
        else:
            canonical = parse_uuid(raw)
            if canonical is None:
                raise fail(_D, "malformed uuid element", ErrorNumber.INTERNAL_ERROR)
            set_text(root, "uuid", canonical)
        usage = root.find("usage")
        if usage is not None:
            kind = usage.get("type")
            if kind is None:
                raise fail(_D, "missing secret usage type")
            if kind not in USAGE_TYPES:
                raise fail(_D, f"unknown secret usage type {kind}")
            if child_text(usage, USAGE_TYPES[kind]) is None:
                raise fail(_D, f"{kind} usage specified, but {USAGE_TYPES[kind]} is missing")
        arrange(root, ("uuid", "description", "usage"))

    @property
    def uuid(self) -> str:
        return self.root.findtext("uuid") or ""

    @property
    def description(self) -> str | None:
        return self.root.findtext("description") or None

    @property
    def ephemeral(self) -> bool:
        return self.root.get("ephemeral") == "yes"

    @property
    def private(self) -> bool:
        return self.root.get("private") == "yes"

    @property
    def usage_type(self) -> str | None:
        usage = self.root.find("usage")
        return usage.get("type") if usage is not None else None

    @property
    def usage_id(self) -> str | None:
        """What the secret is for: the volume path, or the ceph/tls/vtpm name, or the iSCSI target."""
        kind = self.usage_type
        if kind is None or kind not in USAGE_TYPES:
            return None
        return self.root.findtext(f"usage/{USAGE_TYPES[kind]}") or None
