"""The sandbox every template written in a playbook renders in (action templates, alert route names,
schedule names).

jinja2's own sandbox (jinja2.sandbox) keeps a template away from Python's internals, but not from the
machine: `{{ 99**99999999 }}` computes for hours on the event loop, `{{ "ab" * 300000000 }}` takes
gigabytes, and `{{ 1/0 }}` raises ZeroDivisionError, not a TemplateError, past callers that expect one.
`SafeEnvironment` refuses the operations whose result would be huge (a power with an exponent over
MAX_EXPONENT, a string or list repeated or padded past MAX_OUTPUT, a format width of 4 digits or more),
refuses mutating lists and dicts (ImmutableSandboxedEnvironment), caps what a render may produce at
MAX_OUTPUT characters, and turns any failure while rendering into `TemplateRefused`, a jinja2
TemplateError, so every caller's `except TemplateError` holds.

`range()` gives at most MAX_RANGE numbers (jinja's own cap is 100,000), so nested loops over ranges stay
small. Left open: a template can still loop long without producing output (nested `for` over large data
of its own making); jinja offers no hook per iteration.
"""
from __future__ import annotations

import operator
import re
import string
from typing import Any, Callable

from jinja2 import Template
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_EXPONENT = 100
MAX_OUTPUT = 100_000  # characters a render may produce; and the size cap of any one repeated/padded value
MAX_INT_BITS = 100_000
MAX_WIDTH = 999  # widths in format specs, center(), ljust() ...
MAX_RANGE = 1000  # numbers range() gives at most
_PERCENT_WIDTH = re.compile(r"%[^%a-zA-Z]*(\d{4,}|\*)")


class TemplateRefused(TemplateError):
    """A template failed or was refused while rendering (str: why)."""


def _refuse(why: str) -> TemplateRefused:
    return TemplateRefused(why)


def _check_width(width: Any, what: str) -> None:
    if isinstance(width, int) and width > MAX_WIDTH:
        raise _refuse(f"{what} width {width} is over {MAX_WIDTH}")


def _check_percent(fmt: Any) -> None:
    if isinstance(fmt, str) and _PERCENT_WIDTH.search(fmt):
        raise _refuse(f"format widths of more than {len(str(MAX_WIDTH))} digits are refused")


def _check_format_spec(fmt: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError as err:
        raise _refuse(f"bad format string: {err}") from None
    for _, _, spec, _ in fields:
        if spec and ("{" in spec or re.search(r"\d{4,}", spec)):
            raise _refuse(f"format widths of more than {len(str(MAX_WIDTH))} digits are refused")


def _replaced_size(text: str, old: str, new: str, count: int = -1) -> int:
    hits = (len(text) + 1) if old == "" else text.count(old)
    if count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        if _replaced_size(text, old, new, count if isinstance(count, int) else -1) > MAX_OUTPUT:
            raise _refuse(f"the replaced text would be over {MAX_OUTPUT} characters")


class SafeTemplate(Template):
    """Renders with the output cap; any failure is a TemplateRefused."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        out: list[str] = []
        size = 0
        try:
            for chunk in self.generate(*args, **kwargs):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise _refuse(f"the template produced more than {MAX_OUTPUT} characters")
                out.append(chunk)
        except TemplateError:
            raise
        except Exception as err:  # noqa: BLE001 - 1/0, int("x"), MemoryError ...: the template's fault
            raise TemplateRefused(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from None
        return "".join(out)


class SafeEnvironment(ImmutableSandboxedEnvironment):
    """jinja2's sandbox, with the limits in the module doc."""

    template_class = SafeTemplate
    intercepted_binops = frozenset({"**", "*", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

        def safe_range(*args: int) -> range:
            numbers = range(*args)
            if len(numbers) > MAX_RANGE:
                raise _refuse(f"range() would give {len(numbers)} numbers; at most {MAX_RANGE}")
            return numbers

        self.globals["range"] = safe_range
        filters = self.filters
        center, indent, fmt, replace = filters["center"], filters["indent"], filters["format"], filters["replace"]
        batch, slice_ = filters["batch"], filters["slice"]

        def safe_center(value: Any, width: int = 80) -> Any:
            _check_width(width, "center")
            return center(value, width)

        def safe_indent(text: Any, width: Any = 4, *args: Any, **kwargs: Any) -> Any:
            _check_width(width if isinstance(width, int) else len(str(width)), "indent")
            if len(str(text)) * (1 + (width if isinstance(width, int) else len(str(width)))) > MAX_OUTPUT * 4:
                raise _refuse(f"the indented text would be over {MAX_OUTPUT} characters")
            return indent(text, width, *args, **kwargs)

        def safe_format(value: Any, *args: Any, **kwargs: Any) -> Any:
            _check_percent(value)
            return fmt(value, *args, **kwargs)

        def safe_replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
            _check_replace(str(s), str(old), str(new), -1 if count is None else count)
            return replace(eval_ctx, s, old, new, count)

        def safe_batch(value: Any, linecount: int, *args: Any) -> Any:
            _check_width(linecount, "batch")
            return batch(value, linecount, *args)

        def safe_slice(value: Any, slices: int, *args: Any) -> Any:
            _check_width(slices, "slice")
            return slice_(value, slices, *args)

        safe_replace.jinja_pass_arg = replace.jinja_pass_arg  # type: ignore[attr-defined]
        filters.update(center=safe_center, indent=safe_indent, format=safe_format, replace=safe_replace,
                       batch=safe_batch, slice=safe_slice)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if isinstance(right, (int, float)) and not isinstance(right, bool) and abs(right) > MAX_EXPONENT:
                raise _refuse(f"exponents over {MAX_EXPONENT} are refused")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() * abs(right) > MAX_INT_BITS:
                raise _refuse("the power's result would be too large")
            return operator.pow(left, right)
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                    if len(seq) * times > MAX_OUTPUT:
                        raise _refuse(f"a repeated value over {MAX_OUTPUT} long is refused")
            if isinstance(left, int) and isinstance(right, int) and \
                    left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise _refuse("the product would be too large")
            return operator.mul(left, right)
        if operator_ == "%":
            _check_percent(left)
            return operator.mod(left, right)
        return super().call_binop(context, operator_, left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_spec(value.__self__)
        return wrapped

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - jinja's own
        self_ = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(self_, str):
            if name in ("center", "ljust", "rjust", "zfill") and args:
                _check_width(args[0], name)
            elif name == "expandtabs":
                size = args[0] if args else kwargs.get("tabsize", 8)
                if isinstance(size, int) and size * self_.count("\t") > MAX_OUTPUT:
                    raise _refuse(f"the expanded text would be over {MAX_OUTPUT} characters")
            elif name == "replace" and len(args) >= 2:
                _check_replace(self_, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count", -1))
        return super().call(__context, __obj, *args, **kwargs)
