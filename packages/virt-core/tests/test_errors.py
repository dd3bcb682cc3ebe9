"""VirtError: libvirt's codes, domains and messages."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
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


def test_api_arguments_of_the_wrong_type_are_invalid_arg() -> None:
    import virt

    with pytest.raises(VirtError) as info:
        virt.open(42)  # type: ignore[arg-type]
    assert info.value.code == ErrorNumber.INVALID_ARG
    with virt.open("test:///default") as conn:
        dom = conn.lookup_domain("test")
        for call in (lambda: conn.lookup_domain_by_id("x"), lambda: conn.lookup_domain_by_uuid(5),
                     lambda: dom.set_memory(1.5), lambda: dom.set_vcpus("2")):
            with pytest.raises(VirtError) as info:
                call()
            assert info.value.code == ErrorNumber.INVALID_ARG
        assert dom.info().memory == 2097152, "nothing changed"


def test_network_info_is_a_typed_record() -> None:
    import virt

    with virt.open("test:///default") as conn:
        info = conn.lookup_network("default").info()
    assert info == virt.NetworkInfo(active=True, persistent=True, autostart=False, bridge="virbr0")


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_names_are_refused_for_every_kind(name: str) -> None:
    import virt

    documents = [
        f"<domain type='test'><name>{name}</name><memory>1024</memory><os><type>hvm</type></os></domain>",
        f"<network><name>{name}</name></network>",
        f"<pool type='dir'><name>{name}</name><target><path>/x</path></target></pool>",
    ]
    with virt.open("test:///default") as conn:
        before = (len(conn.list_domains()), len(conn.list_networks()), len(conn.list_storage_pools()))
        for define, xml in zip((conn.define_domain, conn.define_network, conn.define_storage_pool),
                               documents, strict=True):
            with pytest.raises(VirtError) as info:
                define(xml)
            assert info.value.code == ErrorNumber.XML_ERROR
            assert f"name '{name}' is not allowed" in info.value.message
        assert (len(conn.list_domains()), len(conn.list_networks()), len(conn.list_storage_pools())) == before


@pytest.mark.parametrize("name", ["ErrorNumber", "ErrorDomain"])
def test_error_enums_are_the_enums_their_source_declares(name: str) -> None:
    """``virt._errcodes`` makes its two enums with CPython's fast path (``enum._simple_enum``):
    they must be what the usual ``class X(enum.IntEnum)`` of the same body gives."""
    import ast
    import enum

    import virt._errcodes as codes

    tree = ast.parse(Path(codes.__file__).read_text())
    body = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name).body
    members = {stmt.targets[0].id: stmt.value.value for stmt in body  # type: ignore[attr-defined]
               if isinstance(stmt, ast.Assign)}
    made = getattr(codes, name)
    usual = enum.IntEnum(name, members, module=made.__module__, qualname=made.__qualname__)  # type: ignore[misc]
    usual.__doc__ = made.__doc__
    assert issubclass(made, enum.IntEnum)
    assert [(m.name, m.value) for m in made] == [(m.name, m.value) for m in usual]
    if hasattr(enum, "_test_simple_enum"):
        enum._test_simple_enum(usual, made)
    with pytest.raises(ValueError):
        made(10**6)
