"""Run properties and the conditions items are shown on (the plugin's property fields and conditions),
and the keywords that check an item by themselves (its task actions). Pure rules, no I/O.

A run's property values are a dict: name -> a string (select, text) or a list of strings (multiselect);
a property that is not set is absent. A condition is a dict in one of these forms (as written in the
playbook file, lists normalised):

    {"property": "severity", "is": ["sev1", "sev2"]}      holds when the value is one of these
    {"property": "severity", "is_not": ["sev3"]}           holds when the value is none of these
    {"and": [cond, ...]} / {"or": [cond, ...]}             one level of nesting, as in the plugin

A multiselect value `is` a list when any of its values is listed, and `is_not` when none is. An unset
property is nothing: `is` never holds on it, `is_not` always does. Texts compare without regard to case
or surrounding spaces.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

PROPERTY_TYPES = ("select", "multiselect", "text")
PropertyValue = str | list[str]


@dataclass(frozen=True)
class PropertySpec:
    name: str  # id-like key: a-z, digits, "_"
    title: str
    type: str  # select | multiselect | text
    options: tuple[str, ...] = ()
    required: bool = False
    default: str | tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        return {"name": self.name, "title": self.title, "type": self.type, "options": list(self.options),
                "required": self.required, "default": default}

    @staticmethod
    def from_dict(raw: Mapping[str, Any]) -> PropertySpec:
        default = raw.get("default")
        return PropertySpec(name=str(raw["name"]), title=str(raw.get("title") or raw["name"]),
                            type=str(raw.get("type") or "text"),
                            options=tuple(str(o) for o in raw.get("options") or ()),
                            required=bool(raw.get("required")),
                            default=tuple(default) if isinstance(default, list) else default)

    def default_value(self) -> PropertyValue | None:
        if self.default is None or self.default == "" or self.default == ():
            return None
        return list(self.default) if isinstance(self.default, tuple) else self.default


class PropertyValueError(ValueError):
    """A value a property does not take; str() says what it takes."""


def _fold(text: str) -> str:
    return text.strip().casefold()


def parse_value(spec: PropertySpec, raw: str | Sequence[str]) -> PropertyValue | None:
    """A value typed by someone (a dialog field, a command) as the property stores it: a select's option
    as the playbook spells it, a multiselect's options (comma-separated when typed) in the playbook's
    order, a text stripped. None for an empty value (unset)."""
    if spec.type == "text":
        text = raw if isinstance(raw, str) else ", ".join(raw)
        text = " ".join(text.split())
        return text or None
    by_fold = {_fold(o): o for o in spec.options}
    words = [w for w in (raw.split(",") if isinstance(raw, str) else raw) if w.strip()]
    if not words:
        return None
    unknown = [w.strip() for w in words if _fold(w) not in by_fold]
    if unknown:
        raise PropertyValueError(f'"{unknown[0]}" is not one of: {", ".join(spec.options)}')
    if spec.type == "select":
        if len(words) > 1:
            raise PropertyValueError(f"takes one of: {', '.join(spec.options)}")
        return by_fold[_fold(words[0])]
    chosen = {by_fold[_fold(w)] for w in words}
    return [o for o in spec.options if o in chosen]


def shown(value: PropertyValue | None) -> str:
    """A value as people read it: a multiselect's options joined with commas; "" when unset."""
    if value is None:
        return ""
    return ", ".join(value) if isinstance(value, list) else value


def _values(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, list):
        return {_fold(str(v)) for v in value}
    return {_fold(str(value))} if str(value).strip() else set()


def holds(condition: Mapping[str, Any] | None, values: Mapping[str, Any]) -> bool:
    """Whether `condition` holds on the run's property values; no condition always holds."""
    if not condition:
        return True
    if "and" in condition:
        return all(holds(c, values) for c in condition["and"])
    if "or" in condition:
        return any(holds(c, values) for c in condition["or"])
    have = _values(values.get(str(condition.get("property", ""))))
    if "is" in condition:
        return bool(have & {_fold(str(v)) for v in condition["is"]})
    if "is_not" in condition:
        return not (have & {_fold(str(v)) for v in condition["is_not"]})
    return True


def visible(condition: Mapping[str, Any] | None, values: Mapping[str, Any], state: str) -> bool:
    """Whether an item is shown: its condition holds, or someone already worked it (as in the plugin, an
    item checked, skipped or started stays in sight when its condition stops holding)."""
    return state != "open" or holds(condition, values)


def condition_properties(condition: Mapping[str, Any] | None) -> set[str]:
    """The property names a condition reads."""
    if not condition:
        return set()
    for key in ("and", "or"):
        if key in condition:
            return set().union(*(condition_properties(c) for c in condition[key]))
    return {str(condition.get("property", ""))}


def run_specs(defs: list[dict[str, Any]]) -> list[PropertySpec]:
    return [PropertySpec.from_dict(d) for d in defs]


@dataclass(frozen=True)
class Shown:
    """A property as people read it: its title and value ("" when unset)."""
    name: str
    title: str
    value: str


def shown_properties(defs: list[dict[str, Any]], values: Mapping[str, Any], *, with_unset: bool = False
                     ) -> list[Shown]:
    return [Shown(s.name, s.title, shown(values.get(s.name))) for s in run_specs(defs)
            if with_unset or values.get(s.name) not in (None, "", [])]


# --- keywords that check an item by themselves ---------------------------------------------------

def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    """Any of the keywords as whole words (or phrases), ignoring case."""
    alternatives = "|".join(re.escape(k.strip()) for k in sorted(keywords, key=len, reverse=True) if k.strip())
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def matching_keyword(auto_check: Mapping[str, Any] | None, message: str, username: str) -> str | None:
    """The keyword of `auto_check` ({"keywords": [...], "users": [...]}) that `message` by `username`
    contains, or None when it does not match or the person is not one of `users` (when given)."""
    if not auto_check or not auto_check.get("keywords"):
        return None
    users = [u.lower().removeprefix("@") for u in auto_check.get("users") or ()]
    if users and username.lower() not in users:
        return None
    found = keyword_pattern(list(auto_check["keywords"])).search(message)
    return found.group(0) if found else None
