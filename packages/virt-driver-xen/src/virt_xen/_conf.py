"""The xl.cfg(5) / xm configuration syntax: a small subset of Python assignments.

``parse_conf(text)`` reads ``name = value`` statements separated by new lines or ``;``, where
a value is a string (``"..."``, ``'...'`` or ``\"\"\"...\"\"\"`` over several lines), an
integer (``-`` makes it signed), or a list ``[ v, v, ... ]`` (over several lines, nested,
with an optional trailing comma); ``#`` starts a comment.  ``XenConf.to_string()`` writes
the statements back the way libvirt does: ``name = value``, strings in double quotes unless
they hold one (then single quotes, then triple quotes), lists as ``[ a, b ]`` on one line.

Every failure is a :class:`virt.VirtError` (``CONF_SYNTAX`` for bad syntax), never another
exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, TypeAlias

from virt import VirtError
from virt._errcodes import ErrorDomain, ErrorNumber

__all__ = ["ConfValue", "Signed", "XenConf", "parse_conf"]


class Signed(int):
    """An integer written with a sign (``-3``): libvirt keeps it apart from unsigned numbers,
    and Xen's boolean and size settings refuse it."""

    __slots__ = ()


ConfValue: TypeAlias = int | str | list["ConfValue"]

#: what libvirt's reader accepts at most (10 MiB)
MAX_CONF_SIZE: Final = 10 * 1024 * 1024
_INT64_MAX: Final = (1 << 63) - 1


def _syntax(line: int, info: str, filename: str | None) -> VirtError:
    where = f"{filename}:{line}: " if filename else ""
    return VirtError(ErrorNumber.CONF_SYNTAX, f"{where}{info}", domain=ErrorDomain.CONF)


class XenConf:
    """An ordered list of ``name = value`` entries (and comment lines)."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        #: (name or None for a comment line, value, comment)
        self.entries: list[tuple[str | None, ConfValue | None, str | None]] = []

    def __contains__(self, name: object) -> bool:
        return any(n == name for n, _, _ in self.entries)

    def __iter__(self) -> Iterator[str]:
        return (n for n, _, _ in self.entries if n is not None)

    def get(self, name: str) -> ConfValue | None:
        """The value of the first entry called ``name``, or None."""
        for n, v, _ in self.entries:
            if n == name:
                return v
        return None

    def set(self, name: str, value: ConfValue) -> None:
        """Replace the value of ``name`` where it stands, or append it."""
        for i, (n, _, comment) in enumerate(self.entries):
            if n == name:
                self.entries[i] = (n, value, comment)
                return
        self.entries.append((name, value, None))

    def to_string(self) -> str:
        out: list[str] = []
        for name, value, comment in self.entries:
            if name is not None and value is not None:
                line = f"{name} = {format_value(value)}"
                if comment is not None:
                    line += f" #{comment}"
            else:
                line = f"#{comment or ''}"
            out.append(line + "\n")
        return "".join(out)


def format_value(value: ConfValue) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        if "\n" in value:
            return f'"""{value}"""'
        if '"' not in value:
            return f'"{value}"'
        if "'" not in value:
            return f"'{value}'"
        return f'"""{value}"""'
    return "[ " + ", ".join(format_value(v) for v in value) + " ]"


class _Parser:
    def __init__(self, text: str, filename: str | None) -> None:
        self.text = text
        self.pos = 0
        self.end = len(text)
        self.line = 1
        self.filename = filename

    def error(self, info: str) -> VirtError:
        return _syntax(self.line, info, self.filename)

    def cur(self) -> str:
        return self.text[self.pos] if self.pos < self.end else ""

    def skip_blanks(self) -> None:
        text, end = self.text, self.end
        while self.pos < end and text[self.pos] in " \t":
            self.pos += 1

    def skip_blanks_and_eol(self) -> None:
        text, end = self.text, self.end
        while self.pos < end and text[self.pos] in " \t\r\n":
            if text[self.pos] == "\n":
                self.line += 1
            self.pos += 1

    def parse(self) -> XenConf:
        conf = XenConf()
        while self.pos < self.end:
            self.statement(conf)
            self.separator()
        return conf

    def statement(self, conf: XenConf) -> None:
        self.skip_blanks_and_eol()
        if self.pos >= self.end:
            return
        if self.cur() == "#":
            conf.entries.append((None, None, self.rest_of_line()))
            return
        name = self.name()
        self.skip_blanks()
        if self.cur() != "=":
            raise self.error("expecting an assignment")
        self.pos += 1
        self.skip_blanks()
        value = self.value(0)
        self.skip_blanks()
        comment = self.rest_of_line() if self.cur() == "#" else None
        conf.entries.append((name, value, comment))

    def rest_of_line(self) -> str:
        self.pos += 1  # the '#'
        start = self.pos
        text, end = self.text, self.end
        while self.pos < end and text[self.pos] not in "\r\n":
            self.pos += 1
        return text[start:self.pos]

    def separator(self) -> None:
        self.skip_blanks()
        if self.pos >= self.end:
            return
        c = self.cur()
        if c in "\r\n":
            self.skip_blanks_and_eol()
        elif c == ";":
            self.pos += 1
            self.skip_blanks_and_eol()
        else:
            raise self.error("expecting a separator")

    def name(self) -> str:
        self.skip_blanks()
        start = self.pos
        c = self.cur()
        if not (c.isascii() and c.isalpha()):
            raise self.error("expecting a name")
        text, end = self.text, self.end
        while self.pos < end and (text[self.pos] == "_" or (text[self.pos].isascii() and text[self.pos].isalnum())):
            self.pos += 1
        return text[start:self.pos]

    def value(self, depth: int) -> ConfValue:
        self.skip_blanks()
        if self.pos >= self.end:
            raise self.error("expecting a value")
        c = self.cur()
        if c in "\"'":
            return self.string()
        if c == "[":
            if depth > 64:
                raise self.error("lists nested too deeply")
            return self.list(depth)
        if c.isascii() and (c.isdigit() or c in "+-"):
            return self.number()
        raise self.error("expecting a value")

    def string(self) -> str:
        text = self.text
        if text.startswith('"""', self.pos) and self.pos + 6 < self.end:
            self.pos += 3
            close = text.find('"""', self.pos)
            if close < 0:
                raise self.error("unterminated string")
            value = text[self.pos:close]
            self.line += value.count("\n")
            self.pos = close + 3
            return value
        quote = text[self.pos]
        self.pos += 1
        start = self.pos
        while self.pos < self.end and text[self.pos] != quote and text[self.pos] not in "\r\n":
            self.pos += 1
        if self.cur() != quote:
            raise self.error("unterminated string")
        self.pos += 1
        return text[start:self.pos - 1]

    def number(self) -> int:
        text = self.text
        neg = text[self.pos] == "-"
        if text[self.pos] in "+-":
            self.pos += 1
        start = self.pos
        while self.pos < self.end and text[self.pos].isascii() and text[self.pos].isdigit():
            self.pos += 1
        if self.pos == start:
            raise self.error("unterminated number")
        value = int(text[start:self.pos])
        if value > _INT64_MAX:
            raise self.error("number too large")
        return Signed(-value) if neg else value

    def list(self, depth: int) -> list[ConfValue]:
        self.pos += 1  # '['
        self.skip_blanks_and_eol()
        items: list[ConfValue] = []
        if self.pos < self.end and self.cur() != "]":
            items.append(self.value(depth + 1))
            self.skip_blanks_and_eol()
        while self.pos < self.end and self.cur() != "]":
            if self.cur() != ",":
                raise self.error("expecting a separator in list")
            self.pos += 1
            self.skip_blanks_and_eol()
            if self.cur() == "]":
                break
            items.append(self.value(depth + 1))
            self.skip_blanks_and_eol()
        if self.cur() != "]":
            raise self.error("list is not closed with ]")
        self.pos += 1
        return items


def parse_conf(text: str, filename: str | None = None) -> XenConf:
    """Parse an xl/xm configuration; ``filename`` (if any) prefixes the error messages."""
    if not isinstance(text, str):
        raise VirtError(ErrorNumber.INVALID_ARG, "configuration must be a string", domain=ErrorDomain.CONF)
    if len(text) > MAX_CONF_SIZE:
        raise VirtError(ErrorNumber.CONF_SYNTAX, "configuration too large", domain=ErrorDomain.CONF)
    return _Parser(text, filename).parse()
