"""The wire format: every record and enum of the contract round-trips, bytes survive, only
plain data is sent, and the frame decoder raises nothing but ProtocolError."""

from __future__ import annotations

import enum
import json
import struct
import typing
from typing import Any

import attrs
import pytest
import virt
from hypothesis import given
from hypothesis import strategies as st
from virt import _records
from virt.hookspecs import operation_specs
from virt_remote import _wire
from virt_remote._wire import MAX_FRAME, ProtocolError


def roundtrip(value: Any) -> Any:
    return _wire.decode_frame(_wire.encode_frame(["ok", 1, _wire.to_wire(value)]))[2]


def sample(cls: type) -> Any:
    """A value of a record class, built from its field annotations alone."""
    values: dict[str, Any] = {}
    for name, hint in typing.get_type_hints(cls).items():
        values[name] = sample_of(hint)
    return cls(**values)


def sample_of(hint: Any) -> Any:
    if hint is str:
        return "x\u00e9\"$r"
    if hint is int:
        return -(2**40)
    if hint is float:
        return 1.5
    if hint is bool:
        return True
    if hint is bytes:
        return b"\x00\xff"
    if hint is type(None):
        return None
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin is tuple:
        return (sample_of(args[0]),) * 2
    if origin is list:
        return [sample_of(args[0])]
    if args:  # a union: its first member
        return sample_of(args[0])
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return list(hint)[-1]
    if isinstance(hint, type) and attrs.has(hint):
        return sample(hint)
    raise AssertionError(hint)


RECORDS = [getattr(_records, n) for n in _records.__all__ if attrs.has(getattr(_records, n))]
ENUMS = [getattr(_records, n) for n in _records.__all__
         if isinstance(getattr(_records, n), type) and issubclass(getattr(_records, n), enum.Enum)]


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_every_record_round_trips(cls: type) -> None:
    value = sample(cls)
    back = roundtrip(value)
    assert back == value and type(back) is cls


@pytest.mark.parametrize("cls", ENUMS, ids=lambda c: c.__name__)
def test_every_enum_round_trips_by_value(cls: type[enum.Enum]) -> None:
    for member in cls:
        wire = _wire.to_wire(member)
        assert wire == {"$e": cls.__name__, "v": member.value}
        assert roundtrip(member) is member


def test_registry_holds_every_type_named_in_hook_annotations() -> None:
    reg = _wire.registry()
    for fn in operation_specs().values():
        for hint in typing.get_type_hints(fn).values():
            for inner in _wire._types_in(hint):
                if isinstance(inner, type) and (attrs.has(inner) or issubclass(inner, enum.Enum)):
                    assert inner in reg.names, inner


def test_records_are_found_by_name_without_walking_the_contract() -> None:
    """A type of virt._records is registered when first met, on either side; only a name it
    does not know makes the registry walk every hook annotation (once)."""
    from virt import _records

    reg = _wire._Registry()
    assert reg.record("DomainInfo") is _records.DomainInfo
    assert reg.enum("DomainState") is _records.DomainState
    assert reg.name_of(_records.VolumeRef) == "VolumeRef"
    assert not reg.completed
    assert reg.record("NoSuchRecord") is None and reg.enum("STATE_NAMES") is None
    assert reg.completed


def test_every_type_a_hook_names_is_a_record_of_the_core() -> None:
    """So that the registry finds each by its name, never by walking the annotations."""
    from virt import _records

    for fn in operation_specs().values():
        for hint in typing.get_type_hints(fn).values():
            for inner in _wire._types_in(hint):
                if isinstance(inner, type) and (attrs.has(inner) or issubclass(inner, enum.Enum)):
                    assert inner.__module__ == _records.__name__ and inner.__name__ in _records.__all__, inner


def test_a_record_with_fields_this_side_does_not_know_still_decodes() -> None:
    """A newer far side may send a record with more fields: they are dropped.  A field that
    is missing and has no default is a protocol error naming it."""
    body = {"$r": "DomainRef", "name": "n", "uuid": "u", "id": 3, "added_later": [1, 2]}
    assert _wire.from_wire(json.dumps(body)) == _records.DomainRef(name="n", uuid="u", id=3)
    with pytest.raises(ProtocolError, match=r"record DomainRef lacks field\(s\) uuid"):
        _wire.from_wire(json.dumps({"$r": "DomainRef", "name": "n"}))
    with pytest.raises(ProtocolError, match="unknown record type"):
        _wire.from_wire(json.dumps({"$r": "DomainState", "v": 1}))


def test_one_hook_signature_is_made_alone() -> None:
    sig = _wire.hook_signature("virt_domain_lookup_by_name")
    assert sig is not None and sig.params == ("name",)
    assert _wire.hook_signature("virt_no_such_hook") is None
    assert _wire.hook_signatures()["virt_domain_lookup_by_name"] is sig


def test_plain_values_round_trip() -> None:
    value = {"a": [1, 2.5, None, True, "s"], "t": (1, (2, "x")), "b": b"\x00" * 3,
             "$odd": {1: "int key", "$": "dollar"}}
    back = roundtrip(value)
    assert back == value
    assert type(back["t"]) is tuple and type(back["t"][1]) is tuple


def test_large_bytes_survive() -> None:
    blob = bytes(range(256)) * 4096 * 4  # 4 MiB
    assert roundtrip(blob) == blob


def test_no_pickle_and_no_live_objects() -> None:
    class Thing:
        pass

    with pytest.raises(ProtocolError, match="only plain data"):
        _wire.to_wire(Thing())
    with pytest.raises(ProtocolError):
        _wire.to_wire(float("nan")) and _wire.encode_frame(["ok", 1, float("nan")])  # type: ignore[func-returns-value]


def test_unknown_record_and_tag_are_refused() -> None:
    for text in ('{"$r": "os.system", "x": 1}', '{"$x": 1}', '{"$e": "Nope", "v": 1}',
                 '{"$e": "DomainState", "v": 99}', '{"$b": "***"}', '{"$r": "DomainRef", "name": "a"}',
                 '{"$t": 5}', '{"$d": [[[1], 2]]}', "NaN", "[1,"):
        with pytest.raises(ProtocolError):
            _wire.from_wire(text)


def test_size_is_checked_before_the_body() -> None:
    header = struct.pack(">I", MAX_FRAME + 1)
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        _wire.read_frame_length(header)
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        _wire.decode_frame(header)  # no body at all: refused on the header alone


def test_frames_are_split_out_of_a_buffer_whole() -> None:
    one, two = _wire.encode_frame(["ok", 1, None]), _wire.encode_frame(["ok", 2, "x" * 100])
    buf = bytearray(one + two[:10])
    assert list(_wire.frames_in(buf)) == [one[4:]]
    assert buf == two[:10]  # the partial frame waits for its bytes
    buf += two[10:]
    assert list(_wire.frames_in(buf)) == [two[4:]]
    assert buf == b""


def test_a_frame_split_out_of_a_buffer_is_checked_on_its_header() -> None:
    buf = bytearray(struct.pack(">I", MAX_FRAME + 1))  # no body: refused on the header alone
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        list(_wire.frames_in(buf))


@given(st.binary(max_size=300))
def test_fuzz_frame_splitter_raises_only_protocol_errors(data: bytes) -> None:
    buf = bytearray(data)
    try:
        for body in _wire.frames_in(buf, limit=200):
            assert len(body) <= 200
    except ProtocolError:
        pass


def test_argument_checks_follow_the_hookspecs() -> None:
    ok = {"uuid": "u", "flags": 0}
    assert _wire.check_arguments("virt_domain_create", ok) is None
    assert "must be int" in (_wire.check_arguments("virt_domain_create", {"uuid": "u", "flags": "0"}) or "")
    assert "must be int" in (_wire.check_arguments("virt_domain_create", {"uuid": "u", "flags": True}) or "")
    assert "missing" in (_wire.check_arguments("virt_domain_create", {"uuid": "u"}) or "")
    assert "unexpected" in (_wire.check_arguments("virt_domain_create", {**ok, "evil": 1}) or "")
    assert "unknown hook" in (_wire.check_arguments("virt_no_such_hook", {}) or "")
    assert _wire.check_arguments("virt_vol_upload", {"key": "k", "offset": 0, "data": b"x", "flags": 0}) is None
    assert _wire.check_arguments("virt_vol_upload", {"key": "k", "offset": 0, "data": "x", "flags": 0})
    event = virt.DomainEvent(name="a", uuid="b")
    assert _wire.check_arguments("virt_event_domain", {"event": event}) is None
    bad = virt.DomainEvent(name=1, uuid="b")  # type: ignore[arg-type]
    assert _wire.check_arguments("virt_event_domain", {"event": bad})


def test_every_hook_has_a_signature() -> None:
    sigs = _wire.hook_signatures()
    assert set(sigs) == set(operation_specs())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)
tagged = st.dictionaries(st.sampled_from(["$r", "$e", "$t", "$b", "$d", "v", "name", "uuid", "id"]),
                         json_values | st.sampled_from(["DomainRef", "DomainState", "AAAA"]), max_size=4)


@given(st.binary(max_size=300))
def test_fuzz_decoder_raises_only_protocol_errors(data: bytes) -> None:
    for frame in (data, struct.pack(">I", len(data)) + data):
        try:
            _wire.decode_frame(frame)
        except ProtocolError:
            pass


@given(st.lists(json_values | tagged, max_size=5))
def test_fuzz_structured_messages_raise_only_protocol_errors(message: list[Any]) -> None:
    body = json.dumps(message).encode()
    try:
        _wire.decode_frame(struct.pack(">I", len(body)) + body)
    except ProtocolError:
        pass


def test_every_operation_hook_can_be_forwarded() -> None:
    """The client's forwarding methods come from the hookspecs: a hook added to the core gets
    one, with the spec's parameters, with no change to virt-remote."""
    import inspect

    from virt_remote._client import _NOT_FORWARDED, connection_class
    from virt_remote._server import _operation_hooks

    hooks = _operation_hooks()
    cls = connection_class(hooks)
    for name in hooks - _NOT_FORWARDED:
        method = getattr(cls, name)
        spec = operation_specs()[name]
        assert list(inspect.signature(method).parameters)[1:] == list(inspect.signature(spec).parameters), name
        assert hasattr(method, "virt_impl"), f"{name} is not marked as a hook implementation"


def test_operation_hooks_from_the_table_are_the_marked_specs() -> None:
    """The far side reads the callable hooks from the core's generated table, not from the
    spec modules: the same set."""
    from virt_remote._server import _operation_hooks

    assert _operation_hooks() == {n for n, f in operation_specs().items() if hasattr(f, "virt_libvirt_api")}
