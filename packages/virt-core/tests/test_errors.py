"""VirtError: libvirt's codes, domains and messages."""

from __future__ import annotations

import pickle

from virt import ErrorDomain, ErrorNumber, VirtError


def test_libvirt_numbers_are_kept() -> None:
    assert ErrorNumber.NO_SUPPORT == 3
    assert ErrorNumber.NO_DOMAIN == 42
    assert ErrorNumber.OPERATION_INVALID == 55
    assert ErrorDomain.DOM == 6


def test_messages_read_like_libvirt() -> None:
    err = VirtError(ErrorNumber.NO_DOMAIN, "no domain with matching name 'x'", domain=ErrorDomain.DOM)
    assert str(err) == "Domain not found: no domain with matching name 'x'"
    assert err.code is ErrorNumber.NO_DOMAIN and err.domain is ErrorDomain.DOM
    assert VirtError("NO_SUPPORT", "virNodeGetMemoryStats").message == (
        "this function is not supported by the connection driver: virNodeGetMemoryStats")


def test_codes_by_name_or_number_and_pickle() -> None:
    err = VirtError(55, "domain is not running")
    assert err.code is ErrorNumber.OPERATION_INVALID
    again = pickle.loads(pickle.dumps(err))
    assert (again.code, again.message) == (err.code, err.message)
