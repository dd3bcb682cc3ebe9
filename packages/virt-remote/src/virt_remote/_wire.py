"""The wire format: frames, plain-data values and the records registry.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON.  The length
is checked against :data:`MAX_FRAME` before a byte of the body is read or parsed.

Values are JSON with a few tagged objects for what JSON lacks (see ``docs/remote-protocol.md``):

* ``{"$b": "<base64>"}`` bytes;
* ``{"$t": [...]}`` a tuple;
* ``{"$d": [[k, v], ...]}`` a dict whose keys are not all plain strings (or start with ``$``);
* ``{"$e": "DomainState", "v": 1}`` an enum member, by value;
* ``{"$r": "DomainRef", "name": ..., "uuid": ..., "id": ...}`` a record, field by field.

Records and enums are those of :mod:`virt._records` plus any other attrs class or enum named
in a hook annotation: the registry finds them itself (a type of ``virt._records`` by its name
when first met, anything else by walking the hook annotations once), never by hand, so a
record added to the core crosses the wire with no change here.  Nothing else is ever decoded
into an object: no pickle, no import by name outside that contract.

Decoding raises :class:`ProtocolError` and nothing else, whatever the bytes.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import struct
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import attrs

__all__ = [
    "MAX_FRAME",
    "ProtocolError",
    "check_arguments",
    "decode_frame",
    "encode_frame",
    "frames_in",
    "from_wire",
    "hook_signature",
    "hook_signatures",
    "read_frame_length",
    "to_wire",
]

#: The largest frame body either side accepts (and sends).
MAX_FRAME = 32 * 1024 * 1024
#: streams: the most bytes a side may send that the other has not acknowledged, and the most
#: one ``sdata`` carries; a console's, and a volume's (``vol-download``, ``vol-upload``)
STREAM_WINDOW, STREAM_PIECE = 256 * 1024, 64 * 1024
VOLUME_WINDOW, VOLUME_PIECE = 4 << 20, 1 << 20
HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame or value that breaks the protocol (the only error the decoder raises)."""


# -- the registry --------------------------------------------------------------------------


class _Registry:
    """Records and enums by wire name, filled as they are first met: a type of
    :mod:`virt._records` (every one a hook names, as a test checks) by its own name; anything
    else once the whole contract was walked (:meth:`complete`).  Making all 25 record classes
    and reading every hook's annotations up front took ~30 ms of each side's first call."""

    def __init__(self) -> None:
        self.records: dict[str, type] = {}
        self.enums: dict[str, type[enum.Enum]] = {}
        self.names: dict[type, str] = {}
        self.fields: dict[type, tuple[str, ...]] = {}
        self.field_set: dict[type, frozenset[str]] = {}
        self.required: dict[type, frozenset[str]] = {}
        self.completed = False

    def add(self, cls: Any, deep: bool = False) -> None:
        """Register ``cls`` (an attrs class or an enum); with ``deep``, the types its fields
        name too."""
        if not isinstance(cls, type) or cls in self.names:
            return
        if attrs.has(cls):
            name = self._name(cls, self.records)
            flds = attrs.fields(cls)
            self.fields[cls] = tuple(f.name for f in flds)
            self.field_set[cls] = frozenset(self.fields[cls])
            self.required[cls] = frozenset(f.name for f in flds if f.default is attrs.NOTHING)
            self.records[name] = cls
            self.names[cls] = name
            if deep:
                for hint in typing.get_type_hints(cls).values():
                    for inner in _types_in(hint):
                        self.add(inner, deep)
        elif issubclass(cls, enum.Enum):
            name = self._name(cls, self.enums)
            self.enums[name] = cls
            self.names[cls] = name

    @staticmethod
    def _name(cls: type, taken: dict[str, Any]) -> str:
        name = cls.__name__
        return name if name not in taken else f"{cls.__module__}.{cls.__qualname__}"

    def name_of(self, kind: type) -> str | None:
        """The wire name of ``kind``, registering it on first sight; None if it has none."""
        from virt import _records

        if (kind.__module__ == _records.__name__ and kind.__name__ in _records.__all__
                and getattr(_records, kind.__name__, None) is kind):
            self.add(kind)
        if kind not in self.names:
            self.complete()
        return self.names.get(kind)

    def record(self, name: str) -> type | None:
        """The record class called ``name`` on the wire, or None."""
        self._resolve(name)
        return self.records.get(name)

    def enum(self, name: str) -> type[enum.Enum] | None:
        """The enum called ``name`` on the wire, or None."""
        self._resolve(name)
        return self.enums.get(name)

    def _resolve(self, name: str) -> None:
        from virt import _records

        if name in _records.__all__ and name[:1].isupper():
            self.add(getattr(_records, name))
        if name not in self.records and name not in self.enums:
            self.complete()

    def complete(self) -> None:
        """Every record and enum of the contract: those of :mod:`virt._records` and the types
        any hook annotation names, with the types their fields name.  Once."""
        if self.completed:
            return
        from virt import _records
        from virt.hookspecs import operation_specs

        for name in _records.__all__:
            if name[:1].isupper():
                self.add(getattr(_records, name), deep=True)
        for fn in operation_specs().values():
            for hint in typing.get_type_hints(fn).values():
                for inner in _types_in(hint):
                    self.add(inner, deep=True)
        self.completed = True


def _types_in(hint: Any) -> list[Any]:
    args = typing.get_args(hint)
    if not args:
        return [hint]
    out: list[Any] = []
    for arg in args:
        out += _types_in(arg)
    return out


_registry = _Registry()


def registry() -> _Registry:
    """The registry, complete (every record and enum of the contract)."""
    _registry.complete()
    return _registry


# -- values to wire --------------------------------------------------------------------------

_SCALAR_TYPES = frozenset((str, int, float, bool, type(None)))


def to_wire(value: Any) -> Any:
    """``value`` as JSON-ready data; raises ProtocolError for anything not plain data."""
    kind = type(value)
    if kind in _SCALAR_TYPES:
        return value
    if kind is list:
        return [to_wire(v) for v in value]
    if kind is tuple:
        return {"$t": [to_wire(v) for v in value]}
    if kind is dict:
        if all(type(k) is str and not k.startswith("$") for k in value):
            return {k: to_wire(v) for k, v in value.items()}
        return {"$d": [[to_wire(k), to_wire(v)] for k, v in value.items()]}
    if kind is bytes or kind is bytearray or kind is memoryview:
        return {"$b": base64.b64encode(value).decode("ascii")}
    reg = _registry
    name = reg.names.get(kind) or reg.name_of(kind)
    if name is not None:
        if kind in reg.fields:
            out: dict[str, Any] = {"$r": name}
            for field in reg.fields[kind]:
                item = getattr(value, field)
                out[field] = item if type(item) in _SCALAR_TYPES else to_wire(item)
            return out
        return {"$e": name, "v": value.value}
    if isinstance(value, enum.Enum):  # an enum subclass nobody named: send its value
        return to_wire(value.value)
    raise ProtocolError(f"cannot send a value of type {kind.__name__}: only plain data crosses the wire")


def _object_hook(obj: dict[str, Any]) -> Any:
    if "$r" in obj:
        reg = _registry
        name = obj["$r"]
        cls = (reg.records.get(name) or reg.record(name)) if type(name) is str else None
        if cls is None:
            raise ProtocolError(f"unknown record type {obj['$r']!r}")
        known = reg.field_set[cls]
        del obj["$r"]  # the decoder's own fresh dict: it becomes the keyword arguments
        kwargs = obj if obj.keys() <= known else {k: v for k, v in obj.items() if k in known}
        if not reg.required[cls] <= kwargs.keys():
            missing = ", ".join(sorted(reg.required[cls] - kwargs.keys()))
            raise ProtocolError(f"record {name} lacks field(s) {missing}")
        try:
            return cls(**kwargs)
        except Exception as exc:  # noqa: BLE001 - a converter refusing a value
            raise ProtocolError(f"bad record {name}: {exc}") from None
    if len(obj) == 1:
        if "$t" in obj:
            items = obj["$t"]
            if type(items) is not list:
                raise ProtocolError("a tuple ($t) must hold a list")
            return tuple(items)
        if "$b" in obj:
            text = obj["$b"]
            if type(text) is not str:
                raise ProtocolError("bytes ($b) must be a base64 string")
            try:
                return base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise ProtocolError("bytes ($b) are not valid base64") from None
        if "$d" in obj:
            pairs = obj["$d"]
            if type(pairs) is not list or not all(type(p) is list and len(p) == 2 for p in pairs):
                raise ProtocolError("a dict ($d) must hold [key, value] pairs")
            try:
                return {k: v for k, v in pairs}
            except TypeError:
                raise ProtocolError("a dict ($d) key is not hashable") from None
    elif "$e" in obj and len(obj) == 2 and "v" in obj:
        reg = _registry
        ename = obj["$e"]
        cls_e = (reg.enums.get(ename) or reg.enum(ename)) if type(ename) is str else None
        if cls_e is None:
            raise ProtocolError(f"unknown enum type {obj['$e']!r}")
        try:
            return cls_e(obj["v"])
        except (ValueError, TypeError):
            raise ProtocolError(f"{obj['v']!r} is not a value of {obj['$e']}") from None
    for key in obj:
        if key.startswith("$"):
            raise ProtocolError(f"unknown tag {key!r}")
    return obj


def _no_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not plain data")


_decoder = json.JSONDecoder(object_hook=_object_hook, parse_constant=_no_constant)
_encoder = json.JSONEncoder(ensure_ascii=False, check_circular=False, allow_nan=False, separators=(",", ":"))


def from_wire(text: str | bytes) -> Any:
    """Parse one frame body; ProtocolError for anything that is not a valid message body."""
    try:
        if isinstance(text, (bytes, bytearray, memoryview)):
            text = bytes(text).decode("utf-8")
        return _decoder.decode(text)
    except ProtocolError:
        raise
    except (ValueError, RecursionError, TypeError, KeyError, AttributeError) as exc:
        raise ProtocolError(f"malformed frame: {type(exc).__name__}: {exc}"[:300]) from None


def encode_frame(message: list[Any]) -> bytes:
    """One message (already ``to_wire``'d) as a frame; ProtocolError when it is too large."""
    try:
        body = _encoder.encode(message).encode("utf-8")
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"cannot encode message: {exc}") from None
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"a frame of {len(body)} bytes exceeds the limit of {MAX_FRAME} bytes")
    return HEADER.pack(len(body)) + body


def read_frame_length(header: bytes, limit: int = MAX_FRAME) -> int:
    """The body length a 4-byte header announces, refused above ``limit`` before any read."""
    if len(header) != 4:
        raise ProtocolError("truncated frame header")
    (length,) = HEADER.unpack(header)
    if length > limit:
        raise ProtocolError(f"a frame of {length} bytes exceeds the limit of {limit} bytes")
    return int(length)


def frames_in(buf: bytearray, limit: int = MAX_FRAME) -> Iterator[bytes]:
    """The bodies of the whole frames at the start of ``buf``, each removed from it before it
    is yielded (a partial frame stays for the next bytes); ProtocolError when a header
    announces more than ``limit``, before its body is waited for."""
    while len(buf) >= 4:
        (length,) = HEADER.unpack_from(buf)
        if length > limit:
            raise ProtocolError(f"a frame of {length} bytes exceeds the limit of {limit} bytes")
        if len(buf) < 4 + length:
            return
        body = bytes(buf[4:4 + length])
        del buf[:4 + length]
        yield body


def decode_frame(data: bytes, limit: int = MAX_FRAME) -> list[Any]:
    """A whole frame (header and body) as a message: a JSON array whose first item is its kind."""
    length = read_frame_length(data[:4], limit)
    if len(data) - 4 != length:
        raise ProtocolError(f"frame header says {length} bytes, body has {len(data) - 4}")
    return check_message(from_wire(data[4:]))


def check_message(message: Any) -> list[Any]:
    if type(message) is not list or not message or type(message[0]) is not str:
        raise ProtocolError("a message must be a JSON array starting with its kind")
    return message


# -- hook signatures and argument checks ------------------------------------------------------

Checker = Callable[[Any], bool]


def _checker(hint: Any) -> Checker:
    if hint is Any:
        return lambda v: True
    if hint is None or hint is type(None):
        return lambda v: v is None
    if hint is bool:
        return lambda v: type(v) is bool
    if hint is int:
        return lambda v: type(v) is int
    if hint is float:
        return lambda v: type(v) is float or type(v) is int
    if hint is str:
        return lambda v: type(v) is str
    if hint is bytes:
        return lambda v: type(v) is bytes
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        options = [_checker(a) for a in args]
        return lambda v: any(c(v) for c in options)
    if origin is list:
        item = _checker(args[0]) if args else _checker(Any)
        return lambda v: type(v) is list and all(item(x) for x in v)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            each = _checker(args[0])
            return lambda v: type(v) in (tuple, list) and all(each(x) for x in v)
        parts = [_checker(a) for a in args]
        return lambda v: (type(v) in (tuple, list) and len(v) == len(parts)
                          and all(c(x) for c, x in zip(parts, v, strict=True)))
    if origin is dict:
        key, val = (_checker(args[0]), _checker(args[1])) if args else (_checker(Any), _checker(Any))
        return lambda v: type(v) is dict and all(key(k) and val(x) for k, x in v.items())
    if isinstance(hint, type) and attrs.has(hint):
        return _record_checker(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        cls = hint
        return lambda v: isinstance(v, cls)
    if isinstance(hint, type):
        cls2 = hint
        return lambda v: isinstance(v, cls2)
    return lambda v: True


_record_checkers: dict[type, Checker] = {}


def _record_checker(cls: type) -> Checker:
    found = _record_checkers.get(cls)
    if found is None:
        checks: list[tuple[str, Checker]] = []

        def check(v: Any) -> bool:
            return type(v) is cls and all(c(getattr(v, n)) for n, c in checks)

        _record_checkers[cls] = check  # before recursing: records may nest
        for name, hint in typing.get_type_hints(cls).items():
            if name in {f.name for f in attrs.fields(cls)}:
                checks.append((name, _checker(hint)))
        found = check
    return found


@attrs.frozen
class HookSignature:
    """What the wire needs to know of one hook: its parameters (with their checkers)."""

    name: str
    params: tuple[str, ...]
    checks: tuple[Checker, ...]
    hints: tuple[str, ...]


_signatures: dict[str, HookSignature] = {}
_specs: dict[str, Any] | None = None


def _signature(name: str, fn: Any) -> HookSignature:
    import inspect

    hints = typing.get_type_hints(fn)
    params = tuple(inspect.signature(fn).parameters)
    return HookSignature(
        name=name,
        params=params,
        checks=tuple(_checker(hints.get(p, Any)) for p in params),
        hints=tuple(_hint_text(hints.get(p, Any)) for p in params),
    )


def hook_signature(name: str) -> HookSignature | None:
    """One operation or event hook of the core contract, from its spec (None if none), made
    when first asked for: reading every hook's annotations took ~15 ms of a far side's first
    call."""
    global _specs
    found = _signatures.get(name)
    if found is None:
        if _specs is None:
            from virt.hookspecs import operation_specs

            _specs = operation_specs()
        fn = _specs.get(name)
        if fn is None:
            return None
        found = _signatures[name] = _signature(name, fn)
    return found


def hook_signatures() -> dict[str, HookSignature]:
    """Every operation and event hook of the core contract, derived from the hookspecs."""
    from virt.hookspecs import operation_specs

    return {name: sig for name in operation_specs() if (sig := hook_signature(name)) is not None}


def _hint_text(hint: Any) -> str:
    if isinstance(hint, type) and not typing.get_args(hint):
        return "None" if hint is type(None) else hint.__name__
    return str(hint).replace("virt._records.", "").replace("typing.", "")


def check_arguments(hook: str, kwargs: Any) -> str | None:
    """Why ``kwargs`` do not fit ``hook``'s parameters, or None when they do."""
    sig = hook_signature(hook) if type(hook) is str else None
    if sig is None:
        return f"unknown hook {hook!r}"
    if type(kwargs) is not dict:
        return f"{hook}: the arguments must be an object of keyword arguments"
    extra = kwargs.keys() - set(sig.params)
    if extra:
        return f"{hook}: unexpected argument(s) {', '.join(sorted(extra))}"
    for name, check, hint in zip(sig.params, sig.checks, sig.hints, strict=True):
        if name not in kwargs:
            return f"{hook}: missing argument {name!r}"
        if not check(kwargs[name]):
            return f"{hook}: argument {name!r} must be {hint}, not {type(kwargs[name]).__name__}"
    return None
