"""A request body as JSON: its nesting depth bounded before it is parsed, a JSON object required, and values named by
their JSON types (string, number, boolean, null, array, object) in every refusal, never by Python's."""
from __future__ import annotations

import numpy as np
import orjson

from .errors import InvalidRequest, MalformedRequest

MAX_DEPTH = 16  # the deepest body of these APIs nests 3 (an object, its input array, a token-id array)

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_BRACKET = np.zeros(256, dtype=bool)
_BRACKET[list(b"[]{}")] = True
_OPENING = np.zeros(256, dtype=bool)
_OPENING[list(b"[{")] = True


def json_object(body: bytes) -> dict:
    """The body parsed as a JSON object; refused (400) if it is nested deeper than MAX_DEPTH, not JSON, or not an
    object."""
    depth = nesting_depth(body)
    if depth > MAX_DEPTH:
        raise MalformedRequest(f"the body is nested {depth} deep (arrays and objects); this API's bodies nest at most "
                               f"{MAX_DEPTH} deep: send the inputs as an array of strings or of token-id arrays")
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise MalformedRequest(f"the body is not valid JSON ({err}); send a JSON object") from None
    if not isinstance(obj, dict):
        raise InvalidRequest(f"the body is {json_type(obj)}; send a JSON object")
    return obj


def nesting_depth(body: bytes) -> int:
    """How deep arrays and objects nest in body, brackets inside strings not counted: a few linear numpy passes, no
    parsing and no recursion, so any body is measured before orjson or the schema code walks it (exact for valid
    JSON, where backslashes occur only inside strings)."""
    data = np.frombuffer(body, dtype=np.uint8)
    brackets = np.flatnonzero(_BRACKET[data])
    if len(brackets) == 0:
        return 0
    quote = data == _QUOTE
    slashes = np.flatnonzero(data == _BACKSLASH)
    if len(slashes):  # a quote after an odd run of backslashes is escaped: part of its string
        first = np.flatnonzero(np.diff(slashes, prepend=-2) != 1)  # where each run of backslashes starts
        lengths = np.diff(first, append=len(slashes))
        after = slashes[first + lengths - 1] + 1  # the byte after each run
        after = after[(lengths % 2 == 1) & (after < len(data))]
        quote[after[data[after] == _QUOTE]] = False
    quotes = np.flatnonzero(quote)
    kept = brackets[np.searchsorted(quotes, brackets) % 2 == 0]  # an even number of quotes before: not in a string
    step = np.where(_OPENING[data[kept]], 1, -1).astype(np.int32)
    return int(np.cumsum(step, dtype=np.int32).max(initial=0))


_NAMES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
_EXPECTED = {str: "a string", bool: "a boolean (true or false)", int: "an integer", float: "a number"}


def json_type(value) -> str:
    """value described by its JSON type, with the value itself when it is a short scalar: 'a string ("x")',
    'a number (2.5)', 'a boolean (true)', 'null', 'an array', 'an object'."""
    if value is None:
        return "null"
    name = _NAMES.get(type(value), "a value")
    if isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 40):
        return f"{name} ({orjson.dumps(value).decode()})"
    return name


def expected(kind: type) -> str:
    """What a field of Python type kind is, in JSON's words."""
    return _EXPECTED.get(kind, kind.__name__)


def optional(obj: dict, name: str, kind: type):
    """obj[name] if present and not null, refused (400 / TEI 422) unless of JSON type kind."""
    value = obj.get(name)
    if value is not None and type(value) is not kind:
        raise InvalidRequest(f"{name} is {json_type(value)}, expected {expected(kind)}", name)
    return value
