"""Test helpers for driver and plugin authors (they need pytest, which virt itself does not).

* :class:`DriverConformance`: the driver contract as a pytest mixin; subclass it in your
  driver's tests and override the ``uri`` fixture (see :mod:`virt.testing.conformance`).
* :func:`isolated_plugins`: run a block with a fresh process-wide plugin state, so a test can
  install, break or disable plugins without leaking into the next test.
* :func:`run_cli`: the ``virt`` command in this process: its exit status, output and errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from virt.testing.conformance import DomainXML, DriverConformance, generic_domain_xml

__all__ = ["DomainXML", "DriverConformance", "generic_domain_xml", "isolated_plugins", "run_cli"]

@contextmanager
def isolated_plugins() -> Iterator[None]:
    """Forget every loaded plugin, entry point and reported problem for the duration of the
    block, then put the previous state back.  Environment variables such as
    ``VIRT_DISABLE_PLUGIN_AUTOLOAD`` are read afresh inside the block."""
    from virt import _plugins

    with _plugins.isolated():
        yield


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``virt ARGV...`` in this process: (exit status, what it printed, what it printed on
    stderr), as a shell would see them."""
    import io
    import sys

    from virt.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        rc = main(list(argv))
    finally:
        sys.stdout, sys.stderr = old
    return rc, out.getvalue(), err.getvalue()
