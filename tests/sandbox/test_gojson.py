"""sandbox/gojson.py against outputs of Go's encoding/json (json.Marshal, json.Unmarshal into any)."""
from __future__ import annotations

import pytest

from sandbox import gojson


@pytest.mark.parametrize(("value", "go"), [
    ({"b": 1, "a": [True, None, "x"]}, '{"a":[true,null,"x"],"b":1}'),  # keys sorted, compact
    ("<a href='x'>&</a>", '"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e"'),  # escapeHTML
    ("line\u2028para\u2029", '"line\\u2028para\\u2029"'),
    ("tab\tnl\n\x01\x7f", '"tab\\tnl\\n\\u0001\x7f"'),
    ("é✅", '"é✅"'),  # UTF-8 as is: one rune each
    (1.0, "1"), (-0.0, "-0"), (0.1, "0.1"), (1e20, "100000000000000000000"), (1e21, "1e+21"),
    (1e-6, "0.000001"), (1e-7, "1e-7"), (1.5e-10, "1.5e-10"), (123456789.25, "123456789.25"),
])
def test_marshal_is_go_json_marshal(value, go) -> None:
    assert gojson.marshal(value) == go
    assert gojson.runes(value) == len(go)


def test_loads_replaces_what_go_replaces() -> None:
    assert gojson.loads(b'"\\ud800x"') == "\ufffdx"  # a lone high surrogate
    assert gojson.loads(b'"\\udc00"') == "\ufffd"  # a lone low surrogate
    assert gojson.loads(b'"\\ud800\\u0041"') == "\ufffdA"  # not followed by a low surrogate
    assert gojson.loads(b'"\\ud83d\\ude00"') == "\U0001f600"  # a valid pair stays one rune
    assert gojson.loads(b'{"\\ud800": ["\\udfff"]}') == {"\ufffd": ["\ufffd"]}
    assert gojson.loads(b'"a\xffb\xe2\x82"') == "a\ufffdb\ufffd\ufffd"  # invalid UTF-8: one per byte
    assert gojson.loads('"ok"') == "ok"
    for bad in (b"NaN", b"[Infinity]", b"-Infinity", b"{", b""):
        with pytest.raises(ValueError):
            gojson.loads(bad)
