"""JSON as Go's encoding/json reads and writes it, where the difference shows to a client.

Reading (`loads`): the real server decodes every body with encoding/json, which never fails on text:
invalid UTF-8 bytes become U+FFFD one byte at a time (decode.go `unquote`: `utf8.DecodeRune` ->
`RuneError, 1` -> `utf8.EncodeRune(b[w:], unicode.ReplacementChar)`), and a `\\u` escape of a lone UTF-16
surrogate becomes U+FFFD (`if utf16.IsSurrogate(rr) { ... // Invalid surrogate; fall back to replacement
rune. rr = unicode.ReplacementChar }`). Python keeps a lone surrogate in the str, and the first attempt to
encode it (a form body, a URL, a log line) raises, which a route turns into a 500 the real server never
gives. NaN and Infinity, which Python accepts and Go does not, are refused.

Writing (`marshal`): only to measure what the server measures. `json.Marshal` sorts map keys, writes
integral floats without a fraction, and escapes `<`, `>`, `&` as `\\u003c`, `\\u003e`, `\\u0026` and
U+2028/U+2029 as `\\u2028`/`\\u2029` (encode.go `appendString` with escapeHTML), six characters each where
Python writes one. model/post.go Post.IsValid counts the runes of `StringInterfaceToJSON(o.GetProps())`
(model/utils.go: `b, _ := json.Marshal(objmap)`) against PostPropsMaxRunes.
"""
from __future__ import annotations

import codecs
import json
import re
from decimal import Decimal
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_RE = re.compile("[<>&\u2028\u2029]")


def _per_byte_replacement(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd" * (err.end - err.start), err.end


codecs.register_error("sandbox-go-fffd", _per_byte_replacement)


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def loads(raw: bytes | bytearray | str) -> Any:
    """json.loads with Go's decoding of text; ValueError where Go's decoder fails."""
    text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "sandbox-go-fffd")
    return _clean(json.loads(text, parse_constant=_no_constant))


def _float(value: float) -> str:
    # encode.go floatEncoder: 'f' unless abs < 1e-6 or abs >= 1e21, shortest digits, e-09 -> e-9.
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits}"
    return format(Decimal(repr(value)).normalize(), "f")


def marshal(value: Any) -> str:
    """json.Marshal of a decoded JSON value (map[string]any and what it holds)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _HTML_RE.sub(lambda m: _HTML_ESCAPES[m.group()], json.dumps(value, ensure_ascii=False))
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(marshal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(marshal(str(k)) + ":" + marshal(value[k]) for k in sorted(value, key=str)) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def runes(value: Any) -> int:
    """utf8.RuneCountInString(json.Marshal(value))."""
    return len(marshal(value))
