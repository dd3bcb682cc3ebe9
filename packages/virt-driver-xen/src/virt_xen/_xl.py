"""Reading what ``xl`` prints: ``list -v``, ``list -l`` (JSON), ``info``, ``vcpu-list``.

Pure functions over text, unit-tested with outputs captured from the Xen test lab (Xen 4.17).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["XlDomain", "XlVcpu", "parse_info", "parse_list", "parse_list_long", "parse_vcpu_list"]

DOM0_UUID = "00000000-0000-0000-0000-000000000000"

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class XlDomain:
    """One line of ``xl list -v``."""

    name: str
    domid: int
    mem_mib: int
    vcpus: int
    flags: str  # r b p s c d (running, blocked, paused, shutdown, crashed, dying), '-' when not
    cpu_seconds: float
    uuid: str = ""
    reason: int | None = None  # the shutdown reason code while shut down (0 poweroff, 1 reboot...)

    @property
    def paused(self) -> bool:
        return "p" in self.flags

    @property
    def shutdown(self) -> bool:
        return "s" in self.flags

    @property
    def crashed(self) -> bool:
        return "c" in self.flags

    @property
    def dying(self) -> bool:
        return "d" in self.flags


def parse_list(text: str) -> list[XlDomain]:
    """``xl list`` or ``xl list -v``: the domains, Domain-0 included.

    Columns are found from the right of each line, since a name may contain spaces (xl pads it
    to a fixed width): ``... ID Mem VCPUs State Time(s) [UUID Reason-Code Security-Label]``."""
    out: list[XlDomain] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("Name "):
            continue
        fields = line.split()
        uuid, reason = "", None
        # -v: a UUID column, then the reason code ("-" while running), then the label
        idx = next((i for i, f in enumerate(fields) if _UUID.match(f)), None)
        if idx is not None and idx >= 6:
            uuid = fields[idx]
            if idx + 1 < len(fields) and fields[idx + 1].lstrip("-").isdigit():
                reason = int(fields[idx + 1])
            fields = fields[:idx]
        if len(fields) < 6:
            continue
        name = " ".join(fields[:-5])
        try:
            domid, mem, vcpus = int(fields[-5]), int(fields[-4]), int(fields[-3])
            seconds = float(fields[-1])
        except ValueError:
            continue
        out.append(XlDomain(name, domid, mem, vcpus, fields[-2], seconds, uuid, reason))
    return out


def parse_list_long(text: str) -> list[dict[str, Any]]:
    """``xl list -l`` (JSON): [{"domid": N, "config": {...libxl_domain_config...}}, ...]."""
    text = text.strip()
    if not text:
        return []
    data = json.loads(text)
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def parse_info(text: str) -> dict[str, str]:
    """``xl info``: ``key : value`` lines (the multi-line tables of ``-n`` are skipped)."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key or " " in key:
            continue
        info.setdefault(key, value.strip())
    return info


@dataclass(frozen=True)
class XlVcpu:
    """One line of ``xl vcpu-list``."""

    name: str
    domid: int
    vcpu: int
    cpu: int  # -1 when not placed
    state: str  # r (running), b (blocked), p (paused), - ; '-p-' style
    cpu_seconds: float
    affinity: str  # hard affinity ("all", "0-1"...)


def parse_vcpu_list(text: str) -> list[XlVcpu]:
    out: list[XlVcpu] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("Name "):
            continue
        head, _, _affinity = line.partition("/")
        fields = head.split()
        if len(fields) < 7:
            continue
        hard = fields[-1]
        f = fields[:-1]
        try:
            domid, vcpu = int(f[-5]), int(f[-4])
            cpu = int(f[-3]) if f[-3].lstrip("-").isdigit() else -1
            seconds = float(f[-1])
        except ValueError:
            continue
        out.append(XlVcpu(" ".join(f[:-5]), domid, vcpu, cpu, f[-2], seconds, hard))
    return out


def cpu_set(affinity: str, ncpus: int) -> tuple[bool, ...]:
    """An affinity word of ``xl vcpu-list`` (``all``, ``0-3,5``) as one flag per host CPU."""
    if affinity in ("all", "any cpu", ""):
        return (True,) * ncpus
    chosen: set[int] = set()
    for part in affinity.split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            chosen.update(range(int(lo), int(hi if hi.isdigit() else lo) + 1))
    return tuple(i in chosen for i in range(ncpus))
