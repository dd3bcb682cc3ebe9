"""Connection URIs: libvirt's ``driver[+transport]://[user@][host][:port]/[path][?params]``."""

from __future__ import annotations

import os
import re

import attrs

from virt._errors import ErrorDomain, ErrorNumber, VirtError

__all__ = ["URI", "default_uri", "load_config", "parse_uri", "resolve_uri"]

# Patterns other than _PLAIN_LOCAL_RE are compiled on first use (re caches them): a CLI start
# with a plain local URI never needs them.
_SCHEME_RE = r"^[A-Za-z][A-Za-z0-9.\-]*(\+[A-Za-z0-9.\-]+)?$"
_ALIAS_RE = r"^[A-Za-z0-9_.\-]+$"
# driver[+transport]:///path with nothing urlsplit would split, unquote or strip: the form of
# almost every local URI, parsed without importing urllib.parse (and ipaddress) on each start.
_PLAIN_LOCAL_RE = re.compile(r"([A-Za-z][A-Za-z0-9.\-]*)(?:\+([A-Za-z0-9.\-]+))?:///([A-Za-z0-9/_.\-]*)")


@attrs.frozen
class URI:
    """A parsed connection URI.

    ``driver`` is the hypervisor scheme (``qemu``, ``test``), ``transport`` what follows ``+``
    (``ssh``, ``unix``) or ``None``; ``params`` keeps the query in order, decoded.
    """

    driver: str
    transport: str | None = None
    user: str | None = None
    host: str | None = None
    port: int | None = None
    path: str = ""
    params: tuple[tuple[str, str], ...] = ()

    @property
    def scheme(self) -> str:
        return self.driver if self.transport is None else f"{self.driver}+{self.transport}"

    @property
    def is_remote(self) -> bool:
        """True when the URI names a transport or a host: the remote plugin's job."""
        return self.transport is not None or bool(self.host)

    def param(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return default

    def without_transport(self) -> URI:
        """The URI the far side opens: same driver and path, no transport, host or user."""
        kept = tuple((k, v) for k, v in self.params if k not in _REMOTE_PARAMS)
        return URI(driver=self.driver, path=self.path, params=kept)

    def __str__(self) -> str:
        from urllib.parse import quote

        out = [self.scheme, "://"]
        if self.user:
            out += [quote(self.user, safe=""), "@"]
        if self.host:
            out.append(f"[{self.host}]" if ":" in self.host else self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(quote(self.path, safe="/:@,+=~"))
        if self.params:
            out.append("?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='/:,~')}" for k, v in self.params))
        return "".join(out)


# libvirt's remote-driver parameters, consumed on the client side and never forwarded.
_REMOTE_PARAMS = frozenset(
    {
        "name", "command", "socket", "netcat", "keyfile", "known_hosts", "known_hosts_verify",
        "no_verify", "no_tty", "pkipath", "sshauth", "keepalive_interval", "keepalive_count",
        "mode", "proxy", "tls_priority",
    }
)


def parse_uri(text: str) -> URI:
    """Parse ``text`` into a :class:`URI`; a malformed URI is ``VirtError(INVALID_ARG)``."""
    if not isinstance(text, str) or "://" not in text:
        # libvirt accepts "test:///default" style only; bare words are aliases (resolve_uri).
        raise VirtError(
            ErrorNumber.INVALID_ARG,
            f"invalid URI '{text}': expected driver[+transport]://[user@][host][:port]/[path][?params]",
            domain=ErrorDomain.URI,
        )
    plain = _PLAIN_LOCAL_RE.fullmatch(text)
    if plain is not None:
        driver, transport, path = plain.groups()
        return URI(driver=driver.lower(), transport=transport.lower() if transport else None, path=f"/{path}")
    from urllib.parse import parse_qsl, unquote, urlsplit

    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise VirtError(ErrorNumber.INVALID_ARG, f"invalid URI '{text}': {exc}", domain=ErrorDomain.URI) from None
    if not re.match(_SCHEME_RE, parts.scheme or ""):
        raise VirtError(ErrorNumber.INVALID_ARG, f"invalid URI scheme in '{text}'", domain=ErrorDomain.URI)
    driver, _, transport = parts.scheme.partition("+")
    params = tuple(parse_qsl(parts.query, keep_blank_values=True))
    return URI(
        driver=driver.lower(),
        transport=transport.lower() or None,
        user=unquote(parts.username) if parts.username else None,
        host=parts.hostname or None,
        port=port,
        path=unquote(parts.path),
        params=params,
    )


def _config_paths() -> list[str]:
    explicit = os.environ.get("VIRT_CONFIG")
    if explicit:
        return [explicit]
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    paths = [os.path.join(base, "virt", "virt.conf"), os.path.join(base, "libvirt", "libvirt.conf")]
    if os.geteuid() == 0:
        paths.insert(0, "/etc/virt/virt.conf")
        paths.append("/etc/libvirt/libvirt.conf")
    return paths


_CONF_LINE = r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$"
_CONF_STRING = r'"((?:[^"\\]|\\.)*)"'


def load_config() -> dict[str, str | list[str]]:
    """Read the first config file found (libvirt.conf syntax: ``uri_default``, ``uri_aliases``)."""
    for path in _config_paths():
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            continue
        return _parse_conf(text, path)
    return {}


def _code(line: str) -> tuple[str, int]:
    """``line`` without its comment, and how many list brackets it leaves open; a ``#`` or
    a bracket inside a quoted string (``"qemu+ssh://[::1]/system"``) is text, not syntax."""
    depth = 0
    quoted = escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif quoted:
            escaped = char == "\\"
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "#":
            return line[:index], depth
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
    return line, depth


def _parse_conf(text: str, origin: str) -> dict[str, str | list[str]]:
    conf: dict[str, str | list[str]] = {}
    # Join multi-line lists: libvirt's config allows a list to span lines.
    joined, depth, buf = [], 0, ""
    for raw in text.splitlines():
        line, opened = _code(raw)
        if not line.strip() and depth == 0:
            continue
        buf += " " + line.strip()
        depth += opened
        if depth <= 0:
            joined.append(buf.strip())
            buf, depth = "", 0
    for line in joined:
        match = re.match(_CONF_LINE, line)
        if not match:
            raise VirtError(ErrorNumber.CONF_SYNTAX, f"{origin}: cannot parse '{line}'", domain=ErrorDomain.CONF)
        key, value = match.groups()
        if value.startswith("["):
            conf[key] = re.findall(_CONF_STRING, value)
        else:
            strings = re.findall(_CONF_STRING, value)
            conf[key] = strings[0] if strings else value
    return conf


def default_uri() -> str | None:
    """``VIRT_DEFAULT_URI``, then ``LIBVIRT_DEFAULT_URI``, then ``uri_default`` from the config."""
    for name in ("VIRT_DEFAULT_URI", "LIBVIRT_DEFAULT_URI"):
        value = os.environ.get(name)
        if value:
            return value
    configured = load_config().get("uri_default")
    return configured if isinstance(configured, str) else None


def resolve_uri(name: str | None) -> URI:
    """Turn what a user typed (a URI, an alias, or nothing) into a :class:`URI`."""
    if name is not None and not isinstance(name, str):
        raise VirtError(ErrorNumber.INVALID_ARG, f"a URI must be a string, not {type(name).__name__}",
                        domain=ErrorDomain.URI)
    if not name:
        name = default_uri() or "test:///default"
    if "://" not in name and re.match(_ALIAS_RE, name):
        aliases = load_config().get("uri_aliases", [])
        for entry in aliases if isinstance(aliases, list) else []:
            alias, sep, target = entry.partition("=")
            if sep and alias == name:
                return parse_uri(target)
    return parse_uri(name)
