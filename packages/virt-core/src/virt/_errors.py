"""The one exception type of the API, with libvirt's error codes and message templates."""

from __future__ import annotations

from typing import Any

from virt._errcodes import ErrorDomain, ErrorNumber

__all__ = ["ErrorDomain", "ErrorNumber", "VirtError", "error_message"]

# libvirt's virErrorMsg(): the prefix each code puts before the detail.  Kept word for word so
# that `virt` prints what `virsh` prints for the same failure.
_TEMPLATES: dict[ErrorNumber, tuple[str, str]] = {
    # code: (message without detail, message with "%s" detail)
    ErrorNumber.INTERNAL_ERROR: ("internal error", "internal error: %s"),
    ErrorNumber.NO_MEMORY: ("out of memory", "out of memory: %s"),
    ErrorNumber.NO_SUPPORT: (
        "this function is not supported by the connection driver",
        "this function is not supported by the connection driver: %s",
    ),
    ErrorNumber.NO_CONNECT: ("no connection driver available", "no connection driver available for %s"),
    ErrorNumber.INVALID_CONN: ("invalid connection pointer in", "invalid connection pointer in %s"),
    ErrorNumber.INVALID_DOMAIN: ("invalid domain pointer in", "invalid domain pointer in %s"),
    ErrorNumber.INVALID_ARG: ("invalid argument", "invalid argument: %s"),
    ErrorNumber.OPERATION_FAILED: ("operation failed", "operation failed: %s"),
    ErrorNumber.GET_FAILED: ("GET operation failed", "GET operation failed: %s"),
    ErrorNumber.POST_FAILED: ("POST operation failed", "POST operation failed: %s"),
    ErrorNumber.HTTP_ERROR: ("got unknown HTTP error code", "got unknown HTTP error code %s"),
    ErrorNumber.UNKNOWN_HOST: ("unknown host", "unknown host %s"),
    ErrorNumber.SEXPR_SERIAL: ("failed to serialize S-Expr", "failed to serialize S-Expr: %s"),
    ErrorNumber.NO_XEN: ("could not use Xen hypervisor entry", "could not use Xen hypervisor entry %s"),
    ErrorNumber.XEN_CALL: ("failed Xen syscall", "failed Xen syscall %s"),
    ErrorNumber.OS_TYPE: ("unknown OS type", "unknown OS type %s"),
    ErrorNumber.NO_KERNEL: ("missing kernel information", "missing kernel information: %s"),
    ErrorNumber.NO_ROOT: ("missing root device information", "missing root device information in %s"),
    ErrorNumber.NO_SOURCE: ("missing source information for device", "missing source information for device %s"),
    ErrorNumber.NO_TARGET: ("missing target information for device", "missing target information for device %s"),
    ErrorNumber.NO_NAME: ("missing name information", "missing name information in %s"),
    ErrorNumber.NO_OS: ("missing operating system information", "missing operating system information for %s"),
    ErrorNumber.NO_DEVICE: ("missing devices information", "missing devices information for %s"),
    ErrorNumber.DRIVER_FULL: ("too many drivers registered", "too many drivers registered in %s"),
    ErrorNumber.CALL_FAILED: ("library call failed", "library call failed: %s"),
    ErrorNumber.XML_ERROR: ("XML description is invalid or not well formed", "XML error: %s"),
    ErrorNumber.DOM_EXIST: ("this domain exists already", "domain %s exists already"),
    ErrorNumber.OPERATION_DENIED: (
        "operation forbidden for read only access",
        "operation forbidden: %s",
    ),
    ErrorNumber.OPEN_FAILED: ("failed to open configuration file", "failed to open configuration file %s"),
    ErrorNumber.READ_FAILED: ("failed to read configuration file", "failed to read configuration file %s"),
    ErrorNumber.PARSE_FAILED: ("failed to parse configuration file", "failed to parse configuration file %s"),
    ErrorNumber.CONF_SYNTAX: ("configuration file syntax error", "configuration file syntax error: %s"),
    ErrorNumber.WRITE_FAILED: ("failed to write configuration file", "failed to write configuration file: %s"),
    ErrorNumber.XML_DETAIL: ("parser error", "%s"),
    ErrorNumber.INVALID_NETWORK: ("invalid network pointer in", "invalid network pointer in %s"),
    ErrorNumber.NETWORK_EXIST: ("this network exists already", "network %s exists already"),
    ErrorNumber.SYSTEM_ERROR: ("system call error", "%s"),
    ErrorNumber.RPC: ("RPC error", "RPC error: %s"),
    ErrorNumber.GNUTLS_ERROR: ("GNUTLS call error", "GNUTLS call error: %s"),
    ErrorNumber.NO_DOMAIN: ("Domain not found", "Domain not found: %s"),
    ErrorNumber.NO_NETWORK: ("Network not found", "Network not found: %s"),
    ErrorNumber.INVALID_MAC: ("invalid MAC address", "invalid MAC address: %s"),
    ErrorNumber.AUTH_FAILED: ("authentication failed", "authentication failed: %s"),
    ErrorNumber.INVALID_STORAGE_POOL: ("invalid storage pool pointer in", "invalid storage pool pointer in %s"),
    ErrorNumber.INVALID_STORAGE_VOL: ("invalid storage volume pointer in", "invalid storage volume pointer in %s"),
    ErrorNumber.NO_STORAGE_POOL: ("Storage pool not found", "Storage pool not found: %s"),
    ErrorNumber.NO_STORAGE_VOL: ("Storage volume not found", "Storage volume not found: %s"),
    ErrorNumber.INVALID_NODE_DEVICE: ("invalid node device pointer", "invalid node device pointer in %s"),
    ErrorNumber.NO_NODE_DEVICE: ("Node device not found", "Node device not found: %s"),
    ErrorNumber.NO_SECURITY_MODEL: ("Security model not found", "Security model not found: %s"),
    ErrorNumber.OPERATION_INVALID: ("Requested operation is not valid", "Requested operation is not valid: %s"),
    ErrorNumber.NO_INTERFACE: ("Interface not found", "Interface not found: %s"),
    ErrorNumber.MULTIPLE_INTERFACES: ("multiple matching interfaces found", "multiple matching interfaces found: %s"),
    ErrorNumber.INVALID_SECRET: ("Invalid secret", "Invalid secret: %s"),
    ErrorNumber.NO_SECRET: ("Secret not found", "Secret not found: %s"),
    ErrorNumber.CONFIG_UNSUPPORTED: ("unsupported configuration", "unsupported configuration: %s"),
    ErrorNumber.OPERATION_TIMEOUT: ("Timed out during operation", "Timed out during operation: %s"),
    ErrorNumber.MIGRATE_PERSIST_FAILED: (
        "Failed to make domain persistent after migration",
        "Failed to make domain persistent after migration: %s"
    ),
    ErrorNumber.HOOK_SCRIPT_FAILED: ("Hook script execution failed", "Hook script execution failed: %s"),
    ErrorNumber.INVALID_DOMAIN_SNAPSHOT: ("Invalid snapshot", "Invalid snapshot: %s"),
    ErrorNumber.NO_DOMAIN_SNAPSHOT: ("Domain snapshot not found", "Domain snapshot not found: %s"),
    ErrorNumber.INVALID_STREAM: ("invalid stream pointer", "invalid stream pointer in %s"),
    ErrorNumber.ARGUMENT_UNSUPPORTED: ("argument unsupported", "argument unsupported: %s"),
    ErrorNumber.STORAGE_PROBE_FAILED: ("Storage pool probe failed", "Storage pool probe failed: %s"),
    ErrorNumber.STORAGE_POOL_BUILT: ("Storage pool already built", "Storage pool already built: %s"),
    ErrorNumber.SNAPSHOT_REVERT_RISKY: ("revert requires force", "revert requires force: %s"),
    ErrorNumber.OPERATION_ABORTED: ("operation aborted", "operation aborted: %s"),
    ErrorNumber.AUTH_CANCELLED: ("authentication cancelled", "authentication cancelled: %s"),
    ErrorNumber.NO_DOMAIN_METADATA: ("metadata not found", "metadata not found: %s"),
    ErrorNumber.MIGRATE_UNSAFE: ("Unsafe migration", "Unsafe migration: %s"),
    ErrorNumber.OVERFLOW: ("numerical overflow", "numerical overflow: %s"),
    ErrorNumber.BLOCK_COPY_ACTIVE: ("block copy still active", "block copy still active: %s"),
    ErrorNumber.OPERATION_UNSUPPORTED: ("Operation not supported", "Operation not supported: %s"),
    ErrorNumber.SSH: ("SSH transport error", "SSH transport error: %s"),
    ErrorNumber.AGENT_UNRESPONSIVE: (
        "Guest agent is not responding",
        "Guest agent is not responding: %s",
    ),
    ErrorNumber.RESOURCE_BUSY: ("resource busy", "resource busy: %s"),
    ErrorNumber.ACCESS_DENIED: ("access denied", "access denied: %s"),
    ErrorNumber.DBUS_SERVICE: ("error from service", "error from service: %s"),
    ErrorNumber.STORAGE_VOL_EXIST: ("this storage volume exists already", "storage volume %s exists already"),
    ErrorNumber.CPU_INCOMPATIBLE: (
        "the CPU is incompatible with host CPU",
        "the CPU is incompatible with host CPU: %s"
    ),
    ErrorNumber.XML_INVALID_SCHEMA: (
        "XML document failed to validate against schema",
        "XML document failed to validate against schema: %s",
    ),
    ErrorNumber.MIGRATE_FINISH_OK: ("migration successfully aborted", "migration successfully aborted: %s"),
    ErrorNumber.AUTH_UNAVAILABLE: ("authentication unavailable", "authentication unavailable: %s"),
    ErrorNumber.NO_SERVER: ("Server not found", "Server not found: %s"),
    ErrorNumber.NO_CLIENT: ("Client not found", "Client not found: %s"),
    ErrorNumber.AGENT_UNSYNCED: (
        "guest agent replied with wrong id to guest-sync command",
        "guest agent replied with wrong id to guest-sync command: %s"
    ),
    ErrorNumber.LIBSSH: ("libssh transport error", "libssh transport error: %s"),
    ErrorNumber.DEVICE_MISSING: ("device not found", "device not found: %s"),
    ErrorNumber.INVALID_NWFILTER_BINDING: ("Invalid network filter binding", "Invalid network filter binding: %s"),
    ErrorNumber.NO_NWFILTER_BINDING: ("Network filter binding not found", "Network filter binding not found: %s"),
    ErrorNumber.NO_NWFILTER: ("Network filter not found", "Network filter not found: %s"),
    ErrorNumber.NO_DOMAIN_CHECKPOINT: ("Domain checkpoint not found", "Domain checkpoint not found: %s"),
    ErrorNumber.NO_DOMAIN_BACKUP: ("Domain backup job id not found", "Domain backup job id not found: %s"),
    ErrorNumber.INVALID_NETWORK_PORT: ("Invalid network port pointer", "Invalid network port pointer: %s"),
    ErrorNumber.NETWORK_PORT_EXIST: ("this network port exists already", "network port %s exists already"),
    ErrorNumber.NO_NETWORK_PORT: ("network port not found", "network port not found: %s"),
    ErrorNumber.NO_HOSTNAME: ("no hostname found", "no hostname found: %s"),
    ErrorNumber.CHECKPOINT_INCONSISTENT: ("checkpoint inconsistent", "checkpoint inconsistent: %s"),
    ErrorNumber.MULTIPLE_DOMAINS: ("multiple matching domains found", "multiple matching domains found: %s"),
}


def error_message(code: ErrorNumber, detail: str | None = None) -> str:
    """Format ``detail`` the way libvirt's ``virErrorMsg`` does for ``code``."""
    plain, with_detail = _TEMPLATES.get(
        code, (code.name.replace("_", " ").lower(), code.name.replace("_", " ").lower() + ": %s")
    )
    if detail is None or detail == "":
        return plain
    return with_detail % detail


class VirtError(Exception):
    """Every failure the API reports.

    :ivar code: an :class:`ErrorNumber` (libvirt's ``virErrorNumber``), e.g. ``NO_DOMAIN``.
    :ivar domain: an :class:`ErrorDomain` (libvirt's ``virErrorDomain``): which part failed.
    :ivar message: the full text, as virsh would print it after ``error:``.
    :ivar detail: the part of the message after libvirt's code-specific prefix.
    """

    code: ErrorNumber
    domain: ErrorDomain
    message: str
    detail: str | None

    def __init__(
        self,
        code: ErrorNumber | int | str,
        detail: str | None = None,
        *,
        domain: ErrorDomain | int | str = ErrorDomain.NONE,
        message: str | None = None,
    ) -> None:
        self.code = _coerce(ErrorNumber, code, ErrorNumber.INTERNAL_ERROR)
        self.domain = _coerce(ErrorDomain, domain, ErrorDomain.NONE)
        self.detail = detail
        self.message = message if message is not None else error_message(self.code, detail)
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (int(self.code), self.detail, int(self.domain), self.message))

    def __repr__(self) -> str:
        return f"VirtError({self.code.name}, domain={self.domain.name}, {self.message!r})"

    # libvirt-python spellings, so code written against libvirt reads naturally.
    def get_error_code(self) -> int:
        return int(self.code)

    def get_error_domain(self) -> int:
        return int(self.domain)

    def get_error_message(self) -> str:
        return self.message


def _coerce(enum_type: Any, value: Any, fallback: Any) -> Any:
    if isinstance(value, enum_type):
        return value
    try:
        if isinstance(value, str):
            return enum_type[value]
        return enum_type(int(value))
    except (KeyError, ValueError, TypeError):
        return fallback


def _rebuild(code: int, detail: str | None, domain: int, message: str) -> VirtError:
    return VirtError(code, detail, domain=domain, message=message)
