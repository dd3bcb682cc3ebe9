"""The xl.cfg syntax (parser and writer) and xl disk specifications."""

from __future__ import annotations

import pytest
from virt import VirtError
from virt._errcodes import ErrorNumber
from virt_xen._conf import Signed, XenConf, parse_conf
from virt_xen._xldisk import parse_xl_disk


def test_values_and_layout() -> None:
    conf = parse_conf('# a guest\nname = "g"  # its name\nvcpus = 2; memory = -1\n'
                      "disk = [ 'a',\n   \"b\" ,\n ]\nnested = [ [ \"x\" ], [] ]\nmulti = \"\"\"one\ntwo\"\"\"\n")
    assert conf.get("name") == "g"
    assert conf.get("vcpus") == 2
    assert isinstance(conf.get("memory"), Signed)
    assert conf.get("disk") == ["a", "b"]
    assert conf.get("nested") == [["x"], []]
    assert conf.get("multi") == "one\ntwo"
    assert conf.to_string() == ('# a guest\nname = "g" # its name\nvcpus = 2\nmemory = -1\ndisk = [ "a", "b" ]\n'
                                'nested = [ [ "x" ], [  ] ]\nmulti = """one\ntwo"""\n')


def test_quoting_and_set_in_place() -> None:
    conf = XenConf()
    conf.set("a", 'say "hi"')
    conf.set("b", "it's \"both\"")
    conf.set("c", 1)
    conf.set("a", "plain")
    assert conf.to_string().splitlines() == ['a = "plain"', 'b = """it\'s "both""""', "c = 1"]


@pytest.mark.parametrize("text", ["name", "name = ", "name = 'x", "name = [ 'a' 'b' ]", "name = [ 'a'",
                                  "1name = 2", "name = 1 2", "name = -"])
def test_syntax_errors(text: str) -> None:
    with pytest.raises(VirtError) as info:
        parse_conf(text)
    assert info.value.code == ErrorNumber.CONF_SYNTAX


@pytest.mark.parametrize(("spec", "target", "fmt", "vdev", "rw", "cdrom", "backend"), [
    ("/dev/x,raw,hda,rw,backendtype=phy", "/dev/x", "raw", "hda", True, False, "phy"),
    ("/x,,hdb,,", "/x", None, "hdb", True, False, None),
    ("format=raw,vdev=hdd,access=ro,devtype=cdrom", None, "empty", "hdd", False, True, None),
    ("format=qed,backendtype=qdisk,vdev=hda,access=rw,target=/a,b", "/a,b", "qed", "hda", True, False, "qdisk"),
    ("phy:/dev/x,hda,w", "/dev/x", None, "hda", True, False, "phy"),
    ("/iso,hdc:cdrom,r", None, None, "", True, False, None),
    (" /y , qcow2 , xvdb", None, None, "", True, False, None),
])
def test_disk_specs(spec: str, target: str | None, fmt: str | None, vdev: str, rw: bool, cdrom: bool,
                    backend: str | None) -> None:
    if not vdev:  # forms xl refuses
        with pytest.raises(VirtError):
            parse_xl_disk(spec)
        return
    disk = parse_xl_disk(spec)
    assert (disk.target, disk.format, disk.vdev, disk.readwrite, disk.cdrom, disk.backend) == (
        target, fmt, vdev, rw, cdrom, backend)
