"""Bad definitions fail with a clear VirtError, and leave nothing running, mounted or made."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import virt
from lxc_testlib import domain_xml, host_mounts_mentioning
from virt import ErrorNumber, VirtError


@pytest.fixture
def conn(uri: str) -> Any:
    with virt.open(uri) as c:
        yield c


def _nothing_left(root: Path, rootfs: Path) -> None:
    run = root / "run" / "lxc"
    leftovers = [p.name for p in run.iterdir() if p.suffix in (".json", ".ctl", ".xml")]
    assert leftovers == [], leftovers
    assert host_mounts_mentioning(str(rootfs)) == []
    # the driver's cgroups sit right below a hierarchy's root (v1) or the root itself (v2);
    # not rglob: a spare's own cgroups come and go meanwhile, and a walk into one fails
    top = Path("/sys/fs/cgroup")
    for base in [*top.glob("virt-lxc"), *top.glob("*/virt-lxc")]:
        # a spare controller waits in cgroups of its own: those are not leftovers
        assert not [p for p in base.iterdir() if p.is_dir() and not p.name.startswith("spare-")], \
            f"cgroups left in {base}"
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert str(root) not in out


def _refused(conn: virt.Connection, xml: str, code: ErrorNumber, words: str) -> VirtError:
    with pytest.raises(VirtError) as info:
        conn.create_domain(xml)
    assert info.value.code == code, info.value
    assert words in info.value.message, info.value.message
    return info.value


def test_missing_rootfs(conn: virt.Connection, root: Path, rootfs: Path) -> None:
    _refused(conn, domain_xml("bad", root / "nowhere"), ErrorNumber.OPERATION_FAILED,
             f"filesystem source '{root / 'nowhere'}' does not exist")
    _nothing_left(root, rootfs)


def test_init_not_found(conn: virt.Connection, root: Path, rootfs: Path) -> None:
    _refused(conn, domain_xml("bad", rootfs, init="/sbin/nothing"), ErrorNumber.OPERATION_FAILED,
             "cannot find init path '/sbin/nothing'")
    _nothing_left(root, rootfs)


def test_init_not_executable(conn: virt.Connection, root: Path, rootfs: Path) -> None:
    (rootfs / "etc" / "motd").write_text("hello\n")
    _refused(conn, domain_xml("bad", rootfs, init="/etc/motd"), ErrorNumber.OPERATION_FAILED,
             "is not an executable file")
    _nothing_left(root, rootfs)


def test_init_that_cannot_run(conn: virt.Connection, root: Path, rootfs: Path) -> None:
    # an executable the kernel cannot run: the failure of execve inside the container
    script = rootfs / "sbin" / "broken"
    script.write_text("#!/no/such/interpreter\n")
    script.chmod(0o755)
    err = _refused(conn, domain_xml("bad", rootfs, init="/sbin/broken"), ErrorNumber.OPERATION_FAILED,
                   "cannot start the container 'bad'")
    assert "No such file or directory" in err.message
    _nothing_left(root, rootfs)


def test_mount_source_outside_the_root(conn: virt.Connection, root: Path, rootfs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    devices = f"<filesystem type='mount'><source dir='{outside}'/><target dir='/mnt'/></filesystem>"
    _refused(conn, domain_xml("bad", rootfs, devices=devices), ErrorNumber.OPERATION_DENIED,
             f"filesystem source '{outside}' is outside")
    _nothing_left(root, rootfs)


def test_mount_of_the_drivers_own_state(conn: virt.Connection, root: Path, rootfs: Path) -> None:
    devices = f"<filesystem type='mount'><source dir='{root / 'run'}'/><target dir='/mnt'/></filesystem>"
    _refused(conn, domain_xml("bad", rootfs, devices=devices), ErrorNumber.OPERATION_DENIED, "driver's own state")
    _nothing_left(root, rootfs)


def test_symlink_out_of_the_root_is_followed_and_refused(conn: virt.Connection, root: Path, rootfs: Path) -> None:
    (root / "sneaky").symlink_to("/etc")
    devices = f"<filesystem type='mount'><source dir='{root / 'sneaky'}'/><target dir='/mnt'/></filesystem>"
    _refused(conn, domain_xml("bad", rootfs, devices=devices), ErrorNumber.OPERATION_DENIED, "is outside")
    _nothing_left(root, rootfs)


@pytest.mark.parametrize(("devices", "extra", "words"), [
    ("<disk type='file' device='disk'><source file='/x'/><target dev='sda'/></disk>", "", "device <disk>"),
    ("<hostdev mode='capabilities' type='net'><source><interface>eth0</interface></source></hostdev>", "",
     "device <hostdev>"),
    ("<filesystem type='block'><source dev='/dev/sda'/><target dir='/mnt'/></filesystem>", "",
     "filesystem type 'block'"),
    ("", "<numatune><memory mode='strict' nodeset='0'/></numatune>", "element <numatune>"),
    ("", "<features><capabilities policy='default'><bogus state='off'/></capabilities></features>",
     "capability 'bogus'"),
    ("", "<features><hyperv mode='custom'/></features>", "feature <hyperv>"),
    ("<interface type='ethernet'/>", "", "interface type 'ethernet'"),
])
def test_unsupported_elements(conn: virt.Connection, root: Path, rootfs: Path, devices: str, extra: str,
                              words: str) -> None:
    xml = domain_xml("bad", rootfs, devices=devices, extra=extra)
    _refused(conn, xml, ErrorNumber.CONFIG_UNSUPPORTED, words)
    with pytest.raises(VirtError) as info:
        conn.define_domain(xml)
    assert info.value.code == ErrorNumber.CONFIG_UNSUPPORTED
    assert conn.list_domains() == []
    _nothing_left(root, rootfs)


def test_wrong_domain_type(conn: virt.Connection, root: Path, rootfs: Path) -> None:
    _refused(conn, domain_xml("bad", rootfs).replace("type='lxc'", "type='kvm'"), ErrorNumber.CONFIG_UNSUPPORTED,
             "domain type 'kvm'")
    _refused(conn, domain_xml("bad", rootfs).replace("<type>exe</type>", "<type>hvm</type>"),
             ErrorNumber.CONFIG_UNSUPPORTED, "OS type 'hvm'")


def test_no_root_filesystem(conn: virt.Connection, root: Path, rootfs: Path) -> None:
    xml = domain_xml("bad", rootfs).replace(f"<filesystem type='mount'><source dir='{rootfs}'/><target dir='/'/>"
                                            "</filesystem>", "")
    _refused(conn, xml, ErrorNumber.CONFIG_UNSUPPORTED, "target '/'")
    _nothing_left(root, rootfs)


def test_limit_the_cgroup_refuses_leaves_nothing(conn: virt.Connection, root: Path, rootfs: Path) -> None:
    # a cpuset of a CPU this host does not have: the cgroup refuses it, nothing is left
    xml = domain_xml("bad", rootfs).replace("<vcpu>1</vcpu>", f"<vcpu cpuset='{os.cpu_count() or 1}'>1</vcpu>")
    _refused(conn, xml, ErrorNumber.SYSTEM_ERROR, "cpuset.cpus")
    _nothing_left(root, rootfs)


def test_bad_uris() -> None:
    for uri, words in (("lxc:///embed", "absolute 'root'"), ("lxc:///nonsense", "unexpected LXC URI path")):
        with pytest.raises(VirtError) as info:
            virt.open(uri)
        assert info.value.code == ErrorNumber.INVALID_ARG
        assert words in info.value.message
