"""Connection URIs: libvirt's forms, the default URI and aliases."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from virt import ErrorNumber, VirtError
from virt._uri import URI, parse_uri, resolve_uri


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("test:///default", URI(driver="test", path="/default")),
        ("qemu:///system", URI(driver="qemu", path="/system")),
        ("qemu:///embed?root=/tmp/x", URI(driver="qemu", path="/embed", params=(("root", "/tmp/x"),))),
        ("qemu+ssh://root@host.example.com:2222/system?keyfile=/k&no_verify=1",
         URI(driver="qemu", transport="ssh", user="root", host="host.example.com", port=2222,
             path="/system", params=(("keyfile", "/k"), ("no_verify", "1")))),
        ("test+ssh://u@127.0.0.1/default", URI(driver="test", transport="ssh", user="u", host="127.0.0.1",
                                               path="/default")),
        ("qemu+unix:///session", URI(driver="qemu", transport="unix", path="/session")),
        ("xen://host/", URI(driver="xen", host="host", path="/")),
        ("test:///tmp/node%20file.xml", URI(driver="test", path="/tmp/node file.xml")),
    ],
)
def test_parse(text: str, expected: URI) -> None:
    assert parse_uri(text) == expected


def test_remote_is_transport_or_host() -> None:
    assert parse_uri("qemu+ssh://h/system").is_remote
    assert parse_uri("qemu://h/system").is_remote
    assert parse_uri("qemu+unix:///session").is_remote
    assert not parse_uri("qemu:///system").is_remote


def test_far_side_uri_drops_transport_and_remote_params() -> None:
    uri = parse_uri("qemu+ssh://u@h:22/system?keyfile=/k&foo=bar")
    assert str(uri.without_transport()) == "qemu:///system?foo=bar"


@pytest.mark.parametrize("text", ["", "nonsense", "://x", "1qemu:///x", "qemu://h:notaport/x"])
def test_malformed_is_invalid_arg(text: str) -> None:
    with pytest.raises(VirtError) as info:
        parse_uri(text)
    assert info.value.code == ErrorNumber.INVALID_ARG


def test_default_uri_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIRT_CONFIG", str(tmp_path / "none.conf"))
    monkeypatch.delenv("VIRT_DEFAULT_URI", raising=False)
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    assert str(resolve_uri(None)) == "test:///default"
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "qemu:///session")
    assert str(resolve_uri(None)) == "qemu:///session"
    monkeypatch.setenv("VIRT_DEFAULT_URI", "lxc:///")
    assert str(resolve_uri(None)) == "lxc:///"


def test_aliases_and_default_from_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf = tmp_path / "virt.conf"
    conf.write_text(
        '# like libvirt.conf\n'
        'uri_aliases = [\n'
        '  "hail=qemu+ssh://root@hail.example.com/system",\n'
        '  "sleet=qemu+ssh://root@sleet.example.com/system",\n'
        ']\n'
        'uri_default = "test:///default"\n'
    )
    monkeypatch.setenv("VIRT_CONFIG", str(conf))
    monkeypatch.delenv("VIRT_DEFAULT_URI", raising=False)
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    assert resolve_uri("sleet").host == "sleet.example.com"
    assert str(resolve_uri(None)) == "test:///default"
    with pytest.raises(VirtError):
        resolve_uri("unknown-alias")


@given(st.text(max_size=200))
def test_parse_raises_only_virterror(text: str) -> None:
    try:
        uri = parse_uri(text)
    except VirtError:
        return
    assert parse_uri(str(uri)) == uri


def test_config_comments_and_brackets_inside_strings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf = tmp_path / "libvirt.conf"
    # Debian's stock libvirt.conf comments out a quoted list; quotes may hold '#' and '['.
    conf.write_text(
        '#uri_aliases = [\n'
        '#  "hail=qemu+ssh://root@hail.cloud.example.com/system",\n'
        '#]\n'
        'uri_aliases = [  # hosts\n'
        '  "v6=qemu+ssh://root@[::1]:2222/system",  # loopback\n'
        '  "frag=test:///tmp/a#b",\n'
        ']\n'
    )
    monkeypatch.setenv("VIRT_CONFIG", str(conf))
    v6 = resolve_uri("v6")
    assert (v6.host, v6.port) == ("::1", 2222)
    assert resolve_uri("frag").driver == "test"
