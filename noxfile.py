"""Sessions for the whole monorepo: ``nox -l`` lists them.

``nox -s demo`` runs the main job (the ``virt`` CLI on the built-in test driver);
``nox -s tests`` runs every package's tests plus the cross-package ones in ``tests/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests", "conformance"]

ROOT = Path(__file__).parent
# Install order matters: virt-core first, every other distribution depends on it.
PACKAGES = [
    "packages/virt-core[cli]",
    "packages/virt-host",
    "packages/virt-driver-qemu",
    "packages/virt-driver-lxc",
    "packages/virt-driver-xen",
    "packages/virt-remote",
]
EXAMPLE_DRIVER = "tests/example-driver"
TEST_DEPS = ["pytest>=8", "hypothesis>=6.100", "pytest-timeout"]


def _which(binary: str) -> str | None:
    import shutil

    return shutil.which(binary)


def _install_all(session: nox.Session, *extra: str) -> None:
    args: list[str] = []
    for package in PACKAGES:
        args += ["-e", package]
    session.install(*args, *extra)


@nox.session
def tests(session: nox.Session) -> None:
    """Every package's tests/ plus tests/ (end to end, conformance, golden, example driver)."""
    _install_all(session, *TEST_DEPS)
    # The example third-party driver is installed as its own distribution, as a user would.
    if (ROOT / EXAMPLE_DRIVER / "pyproject.toml").exists():
        session.install(EXAMPLE_DRIVER)
    paths = [str(p) for p in sorted(ROOT.glob("packages/*/tests")) if any(p.glob("test_*.py"))]
    session.run("pytest", *paths, "tests", *session.posargs)


@nox.session(name="xen-lab")
def xen_lab(session: nox.Session) -> None:
    """The Xen driver on a real Xen 4.17 under QEMU TCG (tests/xenlab.py): ~19 min, ~2.3 GB of RAM."""
    # virt-driver-qemu too: the lab VM is also launched by virt's own QEMU driver (<qemu:commandline>)
    session.install("-e", "packages/virt-core[cli]", "-e", "packages/virt-driver-xen", "-e", "packages/virt-remote",
                    "-e", "packages/virt-host", "-e", "packages/virt-driver-qemu", *TEST_DEPS)
    session.run("python", "tests/xenlab.py", "build")
    session.run("pytest", "packages/virt-driver-xen/tests/test_xen_lab_lifecycle.py",
                "packages/virt-driver-xen/tests/test_xen_lab_conformance.py",
                "packages/virt-driver-xen/tests/test_xen_lab_features.py",
                "tests/test_xenlab_on_qemu_driver.py", "--durations=10",
                *session.posargs, env={"VIRT_XEN_LAB": "1"})


@nox.session
def conformance(session: nox.Session) -> None:
    """libvirt's own test vectors (../shared/conformance): prints area, cases, passed."""
    session.install("-e", "packages/virt-core", *TEST_DEPS)
    session.run("pytest", "tests/conformance", "-q", "-p", "no:randomly", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over every package and the tests."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "packages", "tests", "bench", "tools", "noxfile.py", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every distribution's source (virt-core's is the public contract)."""
    _install_all(session, "mypy>=1.10", "lxml-stubs", "pytest>=8", "hypothesis")
    others = sorted(str(p) for p in ROOT.glob("packages/*/src/*")
                    if p.is_dir() and (p / "py.typed").exists() and p.name != "virt")
    sources = ["packages/virt-core/src/virt", *others]
    session.run("mypy", "--strict", *sources, *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Speed, side by side with Debian's libvirt where it is installed (ratios, not times)."""
    session.install("-e", "packages/virt-core[cli]", "-e", "packages/virt-host", "-e", "packages/virt-driver-qemu",
                    "-e", "packages/virt-driver-lxc", "-e", "packages/virt-remote", "rich")
    session.run("python", "bench/run.py", *session.posargs)
    session.run("python", "bench/storage_ops.py")
    session.run("python", "bench/network_ops.py")  # in a network namespace of its own; needs root
    session.run("python", "bench/lxc_ops.py")  # containers against bare unshare; needs root
    # over SSH to an sshd of its own on 127.0.0.1, side by side with a private libvirtd (root)
    session.run("python", "bench/remote_ops.py")
    # the QEMU driver against bare QEMU (real guests under TCG); skipped without qemu-system
    if _which("qemu-system-x86_64"):
        session.run("python", "bench/qemu_ops.py")
    else:
        session.log("qemu-system-x86_64 not found: the QEMU benchmark is skipped")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: the virt CLI on test:///default (or $VIRT_DEFAULT_URI)."""
    session.install("-e", "packages/virt-core[cli]")
    uri = os.environ.get("VIRT_DEFAULT_URI", "test:///default")
    script = session.posargs or [
        "version; nodeinfo; list --all; dominfo test; domblklist test; "
        "suspend test; domstate test --reason; resume test; "
        "net-list --all; pool-list --all --details; vol-create-as default-pool demo.img 1G; "
        "vol-list default-pool --details; dumpxml test"
    ]
    session.run("virt", "--plain", "-c", uri, *script, external=False)
