"""The web editor's view of a playbook's data dict (the interchange form, see bot.playbooks.validation):
the form it shows and reads back, the TOML text of the same dict, where each validation problem belongs
on the form, a diff between two versions, and the changes "Improve the playbook" proposes from runs.

Everything here is pure: no I/O. The form's field names are the validation's key paths
(`checklists[2].items[1].due`, counted from 1 as in the file), so a problem's key names its field.
Keys the form has no field for stay in TOML text areas: one for the playbook (`extra`: properties,
metrics, webhooks and any newer table) and one per item (`checklists[N].items[M].extra`: `when`,
`auto_check`), so the editor never drops a key it does not know.
"""
from __future__ import annotations

import copy
import difflib
import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping

import tomli_w

from bot.domain.durations import DurationError, format_duration_compact, parse_duration
from bot.playbooks.errors import PlaybookError

# Top-level text fields, in the order the form shows them.
TEXT_KEYS = ("title", "description", "team", "channel_mode", "channel", "channel_name", "category", "owner",
             "welcome")
LIST_KEYS = ("members", "broadcast_channels")  # written as names separated by commas or spaces
BOOL_KEYS = {"private_channel": True, "archive_channel_on_finish": False}  # key -> default
STATUS_KEYS = ("interval", "template")
RETRO_KEYS = ("template", "reminder")
ITEM_KEYS = ("title", "description", "assignee", "due", "command")
FORM_KEYS = frozenset(TEXT_KEYS + LIST_KEYS + tuple(BOOL_KEYS) + ("status_updates", "retrospective", "checklists"))
MAX_CHECKLISTS = 100
MAX_ITEMS = 500

_NAME = re.compile(r"^checklists\[(\d{1,4})\]\.(?:(title)|items\[(\d{1,4})\]\.(\w+))$")
_SPLIT = re.compile(r"[\s,]+")


@dataclass
class ItemForm:
    title: str = ""
    description: str = ""
    assignee: str = ""
    due: str = ""
    command: str = ""
    extra: str = ""  # TOML lines for the item's other keys (when, auto_check)


@dataclass
class ChecklistForm:
    title: str = ""
    items: list[ItemForm] = field(default_factory=list)


@dataclass
class EditorForm:
    """What the editor's form holds: every value as the person sees and types it."""

    text: dict[str, str] = field(default_factory=dict)  # TEXT_KEYS, LIST_KEYS, status_updates.x, retrospective.x
    flags: dict[str, bool] = field(default_factory=dict)  # BOOL_KEYS, status_updates.enabled, retrospective.enabled
    checklists: list[ChecklistForm] = field(default_factory=list)
    extra: str = ""  # TOML for the keys the form has no field for

    def value(self, name: str) -> str:
        return self.text.get(name, "")

    def flag(self, name: str) -> bool:
        return self.flags.get(name, BOOL_KEYS.get(name, False))

    def field_names(self) -> set[str]:
        names = set(TEXT_KEYS) | set(LIST_KEYS) | set(BOOL_KEYS) | {"extra"}
        names |= {f"status_updates.{k}" for k in ("enabled",) + STATUS_KEYS}
        names |= {f"retrospective.{k}" for k in ("enabled",) + RETRO_KEYS}
        for c, checklist in enumerate(self.checklists, start=1):
            names.add(f"checklists[{c}].title")
            for i, _ in enumerate(checklist.items, start=1):
                names |= {f"checklists[{c}].items[{i}].{k}" for k in ITEM_KEYS + ("extra",)}
        return names


@dataclass(frozen=True)
class FieldProblem:
    """A problem shown next to a form field ("" = the form as a whole)."""

    field: str
    key: str  # the validation's key path (or "" for the whole playbook)
    message: str


def dump_toml(data: Mapping[str, Any]) -> str:
    """The TOML text of a data dict (tomllib.loads gives the same dict back), written as playbook files are:
    every table and list of tables under its own header (`[[checklists.items]]`), never inline, and long
    texts as multi-line strings."""
    return "\n".join(_table(_plain(data), "", False)).strip() + "\n"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(table: Mapping[str, Any], path: str, many: bool) -> list[str]:
    lines = [f"[[{path}]]" if many else f"[{path}]"] if path else []
    for key, value in table.items():
        if isinstance(value, dict) or _is_tables(value):
            continue
        lines.append(_key(key) + tomli_w.dumps({"v": value}, multiline_strings=True).rstrip("\n")[1:])
    for key, value in table.items():
        sub = f"{path}.{_key(key)}" if path else _key(key)
        if isinstance(value, dict):
            lines += [""] + _table(value, sub, False)
        elif _is_tables(value):
            for entry in value:
                lines += [""] + _table(entry, sub, True)
    return lines


def _plain(value: Any) -> Any:
    # Versions are stored as JSON: no TOML dates, but be safe with anything else a dict may hold.
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value if v is not None]
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _names_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return _text(value)


# --- data -> form --------------------------------------------------------------------------------

def form_from_data(data: Mapping[str, Any]) -> EditorForm:
    form = EditorForm()
    for key in TEXT_KEYS:
        if key in data:
            form.text[key] = _text(data[key])
    for key in LIST_KEYS:
        if key in data:
            form.text[key] = _names_text(data[key])
    for key, default in BOOL_KEYS.items():
        form.flags[key] = data[key] if isinstance(data.get(key), bool) else default
    for table, keys in (("status_updates", STATUS_KEYS), ("retrospective", RETRO_KEYS)):
        raw = data.get(table)
        present = isinstance(raw, dict)
        values = raw if isinstance(raw, dict) else {}
        enabled = values.get("enabled", True)
        form.flags[f"{table}.enabled"] = present and enabled is not False
        for key in keys:
            if key in values:
                form.text[f"{table}.{key}"] = _text(values[key])
    extra: dict[str, Any] = {k: v for k, v in data.items() if k not in FORM_KEYS}
    for table in ("status_updates", "retrospective"):
        if table in data and not isinstance(data[table], dict):
            extra[table] = data[table]
    checklists = data.get("checklists")
    if isinstance(checklists, list):
        for raw_checklist in checklists:
            if not isinstance(raw_checklist, dict):
                continue
            checklist = ChecklistForm(title=_text(raw_checklist.get("title", "")))
            items = raw_checklist.get("items")
            for raw_item in items if isinstance(items, list) else []:
                if not isinstance(raw_item, dict):
                    continue
                item = ItemForm(**{k: _text(raw_item[k]) for k in ITEM_KEYS if k in raw_item})
                rest = {k: v for k, v in raw_item.items() if k not in ITEM_KEYS}
                item.extra = dump_toml(rest).strip() if rest else ""
                checklist.items.append(item)
            form.checklists.append(checklist)
    elif checklists is not None:
        extra["checklists"] = checklists
    form.extra = dump_toml(extra).strip() if extra else ""
    return form


# --- posted form -> form -> data -----------------------------------------------------------------

def form_from_post(posted: Mapping[str, str]) -> EditorForm:
    """The editor's form as posted (unknown names are ignored; checklists and items in the order of the
    numbers in their names, renumbered from 1)."""
    form = EditorForm()
    for key in TEXT_KEYS + LIST_KEYS + tuple(f"status_updates.{k}" for k in STATUS_KEYS) + tuple(
            f"retrospective.{k}" for k in RETRO_KEYS):
        value = posted.get(key, "")
        if value.strip():
            form.text[key] = value.replace("\r\n", "\n")
    for key in tuple(BOOL_KEYS) + ("status_updates.enabled", "retrospective.enabled"):
        form.flags[key] = posted.get(key, "") in ("1", "on", "true")
    form.extra = posted.get("extra", "").replace("\r\n", "\n").strip()
    checklists: dict[int, dict[str, Any]] = {}
    for name, value in posted.items():
        match = _NAME.match(name)
        if match is None:
            continue
        c = int(match.group(1))
        entry = checklists.setdefault(c, {"title": "", "items": {}})
        if match.group(2):
            entry["title"] = value
        else:
            i, key = int(match.group(3)), match.group(4)
            if key in ITEM_KEYS or key == "extra":
                entry["items"].setdefault(i, {})[key] = value.replace("\r\n", "\n")
    for c in sorted(checklists)[:MAX_CHECKLISTS]:
        entry = checklists[c]
        checklist = ChecklistForm(title=entry["title"])
        for i in sorted(entry["items"])[:MAX_ITEMS]:
            values = entry["items"][i]
            checklist.items.append(ItemForm(**{k: v.strip() if k != "description" else v
                                               for k, v in values.items()}))
        form.checklists.append(checklist)
    return form


def data_from_form(form: EditorForm) -> tuple[dict[str, Any], list[FieldProblem]]:
    """The data dict the form describes, and the problems of its TOML areas (which then count as empty)."""
    problems: list[FieldProblem] = []
    data: dict[str, Any] = {}
    for key in TEXT_KEYS:
        value = form.value(key)
        if key in ("title", "description", "welcome"):
            if value.strip() or key == "title":
                data[key] = value.strip() if key == "title" else value
        elif value.strip():
            data[key] = value.strip()
    for key in LIST_KEYS:
        names = [n for n in _SPLIT.split(form.value(key)) if n]
        if names:
            data[key] = names
    for key, default in BOOL_KEYS.items():
        if form.flag(key) != default:
            data[key] = form.flag(key)
    for table, keys in (("status_updates", STATUS_KEYS), ("retrospective", RETRO_KEYS)):
        values: dict[str, Any] = {k: form.value(f"{table}.{k}") for k in keys if form.value(f"{table}.{k}").strip()}
        if "interval" in values:
            values["interval"] = values["interval"].strip()
        if "reminder" in values:
            values["reminder"] = values["reminder"].strip()
        if form.flag(f"{table}.enabled"):
            data[table] = values
        elif values:
            data[table] = {"enabled": False, **values}
    extra = _toml_area(form.extra, "extra", problems)
    checklists = []
    for c, checklist in enumerate(form.checklists, start=1):
        items = []
        for i, item in enumerate(checklist.items, start=1):
            raw: dict[str, Any] = {"title": item.title.strip()}
            for key in ("description", "assignee", "due", "command"):
                value = getattr(item, key)
                if value.strip():
                    raw[key] = value if key == "description" else value.strip()
            rest = _toml_area(item.extra, f"checklists[{c}].items[{i}].extra", problems)
            for key, value in rest.items():
                if key in raw:
                    problems.append(FieldProblem(f"checklists[{c}].items[{i}].extra", "",
                                                 f'"{key}" has its own field; remove it here'))
                else:
                    raw[key] = value
            items.append(raw)
        entry: dict[str, Any] = {"title": checklist.title.strip()}
        if items:
            entry["items"] = items
        checklists.append(entry)
    for key, value in extra.items():
        if key in data or (key == "checklists" and checklists):
            problems.append(FieldProblem("extra", "", f'"{key}" has its own field; remove it here'))
        else:
            data[key] = value
    if checklists:
        data["checklists"] = checklists
    return data, problems


def _toml_area(text: str, name: str, problems: list[FieldProblem]) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append(FieldProblem(name, "", f"invalid TOML: {exc}"))
        return {}


def parse_toml_text(text: str) -> tuple[dict[str, Any] | None, str]:
    """(data, "") from the TOML view's text, or (None, the problem)."""
    try:
        return tomllib.loads(text.replace("\r\n", "\n")), ""
    except tomllib.TOMLDecodeError as exc:
        return None, f"invalid TOML: {exc}"


# --- changing the form's shape (the buttons, without JavaScript) ------------------------------------

_OP = re.compile(r"^(add-checklist|add-item|remove|up|down):(?:checklists\[(\d{1,4})\](?:\.items\[(\d{1,4})\])?)?$")


def apply_op(form: EditorForm, op: str) -> bool:
    """Add, remove or move a checklist or an item: `add-checklist:`, `add-item:checklists[2]`,
    `remove:checklists[2].items[1]`, `up:checklists[2]`, `down:...`. Whether `op` was one."""
    match = _OP.match(op)
    if match is None:
        return False
    verb = match.group(1)
    c = int(match.group(2)) - 1 if match.group(2) else None
    i = int(match.group(3)) - 1 if match.group(3) else None
    if verb == "add-checklist":
        if len(form.checklists) < MAX_CHECKLISTS:
            form.checklists.append(ChecklistForm(items=[ItemForm()]))
        return True
    if c is None or not 0 <= c < len(form.checklists):
        return True
    checklist = form.checklists[c]
    if verb == "add-item":
        if len(checklist.items) < MAX_ITEMS:
            checklist.items.append(ItemForm())
        return True
    target: list[Any] = form.checklists if i is None else checklist.items
    index = c if i is None else i
    if not 0 <= index < len(target):
        return True
    if verb == "remove":
        del target[index]
    elif verb == "up" and index > 0:
        target[index - 1], target[index] = target[index], target[index - 1]
    elif verb == "down" and index < len(target) - 1:
        target[index + 1], target[index] = target[index], target[index + 1]
    return True


# --- problems -> fields --------------------------------------------------------------------------

_PART = re.compile(r"\.|(?=\[)")


def field_for(key: str, names: set[str]) -> str:
    """The form field a validation problem's key path belongs to ("" for the form as a whole): the key
    itself or its nearest parent that is a field; inside an item, its TOML area; an item or a checklist
    as a whole, its title; a key the form has no field for, the playbook's TOML area."""
    if not key:
        return ""
    parts = [p for p in _PART.split(key) if p]
    for n in range(len(parts), 0, -1):
        prefix = "".join(p if p.startswith("[") or k == 0 else "." + p for k, p in enumerate(parts[:n]))
        if prefix in names:
            return prefix
        if f"{prefix}.title" in names and n == len(parts):
            return f"{prefix}.title"
        if re.fullmatch(r"checklists\[\d+\]\.items\[\d+\]", prefix) and f"{prefix}.extra" in names:
            return f"{prefix}.extra"
    top = parts[0]
    if top in ("status_updates", "retrospective"):
        return f"{top}.enabled"
    return "extra" if top not in FORM_KEYS else ""


def place_problems(errors: tuple[PlaybookError, ...] | list[PlaybookError], form: EditorForm
                   ) -> list[FieldProblem]:
    names = form.field_names()
    return [FieldProblem(field_for(e.key, names), e.key, e.problem) for e in errors]


# --- a diff between two versions -----------------------------------------------------------------

@dataclass(frozen=True)
class SettingChange:
    key: str
    old: str  # "" when absent
    new: str


@dataclass(frozen=True)
class ItemChange:
    kind: str  # added | removed | moved | changed
    title: str
    position: int  # in the new version (added, moved, changed) or the old one (removed), from 1
    details: tuple[SettingChange, ...] = ()


@dataclass(frozen=True)
class ChecklistChange:
    kind: str  # added | removed | changed | moved
    title: str
    items: tuple[ItemChange, ...] = ()
    position: int = 0


@dataclass(frozen=True)
class Diff:
    settings: tuple[SettingChange, ...]
    checklists: tuple[ChecklistChange, ...]
    unified: str  # a unified diff of the two versions' TOML

    @property
    def empty(self) -> bool:
        return not self.settings and not self.checklists


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return _text(value)


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and not prefix:
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def _checklists(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = data.get("checklists")
    return [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []


def _items(checklist: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = checklist.get("items")
    return [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []


def _moved(old_titles: list[str], new_titles: list[str]) -> set[str]:
    """Titles in both lists whose order among the common ones changed (the fewest: outside the longest
    common subsequence)."""
    common = set(old_titles) & set(new_titles)
    a = [t for t in old_titles if t in common]
    b = [t for t in new_titles if t in common]
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    kept = {a[block.a + k] for block in matcher.get_matching_blocks() for k in range(block.size)}
    return common - kept


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> Diff:
    """What changed from `old` to `new`: settings (top-level keys and tables, checklists aside), and per
    checklist (matched by title) the items added, removed, moved and changed (matched by title)."""
    old_flat = _flat({k: v for k, v in old.items() if k != "checklists"})
    new_flat = _flat({k: v for k, v in new.items() if k != "checklists"})
    settings = tuple(SettingChange(k, _shown(old_flat.get(k)), _shown(new_flat.get(k)))
                     for k in sorted(set(old_flat) | set(new_flat)) if old_flat.get(k) != new_flat.get(k))
    old_lists = {c.get("title", ""): c for c in _checklists(old)}
    new_lists = {c.get("title", ""): c for c in _checklists(new)}
    old_order = [c.get("title", "") for c in _checklists(old)]
    new_order = [c.get("title", "") for c in _checklists(new)]
    moved_lists = _moved(old_order, new_order)
    changes: list[ChecklistChange] = []
    for pos, title in enumerate(new_order, start=1):
        if title not in old_lists:
            items = tuple(ItemChange("added", i.get("title", ""), n)
                          for n, i in enumerate(_items(new_lists[title]), start=1))
            changes.append(ChecklistChange("added", title, items, pos))
            continue
        item_changes = _item_changes(_items(old_lists[title]), _items(new_lists[title]))
        if item_changes or title in moved_lists:
            changes.append(ChecklistChange("moved" if title in moved_lists and not item_changes else "changed",
                                           title, item_changes, pos))
    for pos, title in enumerate(old_order, start=1):
        if title not in new_lists:
            changes.append(ChecklistChange("removed", title, (), pos))
    old_text = dump_toml(old).splitlines()
    new_text = dump_toml(new).splitlines()
    unified = "\n".join(difflib.unified_diff(old_text, new_text, "before", "after", lineterm=""))
    return Diff(settings, tuple(changes), unified)


def _item_changes(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> tuple[ItemChange, ...]:
    old_by = {i.get("title", ""): (n, i) for n, i in enumerate(old, start=1)}
    new_titles = [i.get("title", "") for i in new]
    moved = _moved([i.get("title", "") for i in old], new_titles)
    out: list[ItemChange] = []
    for pos, item in enumerate(new, start=1):
        title = item.get("title", "")
        if title not in old_by:
            out.append(ItemChange("added", title, pos))
            continue
        before = old_by[title][1]
        details = tuple(SettingChange(k, _shown(before.get(k)), _shown(item.get(k)))
                        for k in sorted(set(before) | set(item)) if before.get(k) != item.get(k))
        if details:
            out.append(ItemChange("changed", title, pos, details))
        elif title in moved:
            out.append(ItemChange("moved", title, pos))
    present = set(new_titles)
    out.extend(ItemChange("removed", title, n) for title, (n, _) in old_by.items() if title not in present)
    return tuple(out)


# --- "Improve the playbook": proposals drawn from runs ---------------------------------------------

@dataclass(frozen=True)
class ItemOutcome:
    """How one item of one run ended: its state, when it was due and when it was last changed, in seconds
    after the run started (None: no due time / not done)."""

    run_id: str
    checklist: str
    title: str
    state: str
    due_s: int | None
    done_s: int | None


@dataclass(frozen=True)
class Proposal:
    kind: str  # add | remove | due
    checklist: str
    title: str
    reason: str
    checked: bool
    due: str = ""  # for "due": the longer due time proposed

    def encode(self) -> str:
        return json.dumps({"kind": self.kind, "checklist": self.checklist, "title": self.title, "due": self.due,
                           "reason": self.reason}, ensure_ascii=False, separators=(",", ":"))


def decode_proposal(raw: str) -> Proposal | None:
    """A proposal as its checkbox posts it back; None when it is not one."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("kind") not in ("add", "remove", "due"):
        return None
    parts = [value.get(k, "") for k in ("checklist", "title", "due", "reason")]
    if not all(isinstance(p, str) and len(p) <= 1024 for p in parts) or not parts[1]:
        return None
    return Proposal(str(value["kind"]), parts[0], parts[1], parts[3], True, parts[2])


def _round_up(seconds: int) -> str:
    """A due time a little above `seconds`: whole minutes below two hours, whole hours below two days,
    whole days beyond."""
    for unit in (60, 3600, 86400):
        if seconds < unit * (120 if unit == 60 else 48) or unit == 86400:
            return format_duration_compact(timedelta(seconds=-(-seconds // unit) * unit))
    raise AssertionError("unreachable")


def propose(data: Mapping[str, Any], added: list[tuple[str, str]], outcomes: list[ItemOutcome],
            run_id: str) -> list[Proposal]:
    """What the run `run_id` and the playbook's recent runs (`outcomes`, this one included) suggest:
    items added by hand during the run, as new items of their checklist (checked); items skipped in most
    of the recent runs that had them (at least two), for removal (unchecked: a person decides); items
    checked after their due time, with a due time long enough for the latest of them (checked)."""
    out: list[Proposal] = []
    present = {(c.get("title", ""), i.get("title", "")) for c in _checklists(data) for i in _items(c)}
    seen: set[tuple[str, str]] = set()
    for where, title in added:
        if (where, title) in present or (where, title) in seen or not title.strip():
            continue
        seen.add((where, title))
        out.append(Proposal("add", where, title, "added by hand during this run", True))
    by_item: dict[tuple[str, str], list[ItemOutcome]] = {}
    for o in outcomes:
        by_item.setdefault((o.checklist, o.title), []).append(o)
    for checklist in _checklists(data):
        for item in _items(checklist):
            key = (checklist.get("title", ""), item.get("title", ""))
            history = by_item.get(key, [])
            runs = {o.run_id for o in history}
            skipped = {o.run_id for o in history if o.state == "skipped"}
            if len(runs) >= 2 and len(skipped) * 2 > len(runs):
                out.append(Proposal("remove", key[0], key[1], f"skipped in {len(skipped)} of the last {len(runs)} "
                                                              "runs", False))
                continue
            due = item.get("due")
            if not isinstance(due, str):
                continue
            try:
                due_s = int(parse_duration(due).total_seconds())
            except DurationError:
                continue
            late = [o for o in history if o.state == "closed" and o.done_s is not None and o.done_s > due_s]
            if not late:
                continue
            longest = max(o.done_s or 0 for o in late)
            proposed = _round_up(longest)
            if proposed == due:
                continue
            this_run = any(o.run_id == run_id for o in late)
            where = "in this run" + (f" and {len(late) - 1} other recent runs" if len(late) > 1 else "") \
                if this_run else f"in {len(late)} recent runs"
            out.append(Proposal("due", key[0], key[1], f"checked after its due time ({due}) {where}", True,
                                due=proposed))
    return out


def apply_proposals(data: Mapping[str, Any], proposals: list[Proposal]) -> dict[str, Any]:
    """`data` with the proposals made: an added item goes to the end of its checklist (a new checklist when
    there is none of that title); a removed item goes; a due time is replaced. A proposal that no longer
    fits (the item is gone or already there) changes nothing."""
    result = copy.deepcopy(dict(data))
    checklists = result.get("checklists")
    if not isinstance(checklists, list):
        checklists = []
    for p in proposals:
        checklist = next((c for c in checklists if isinstance(c, dict) and c.get("title") == p.checklist), None)
        items = checklist.get("items") if checklist is not None else None
        items = items if isinstance(items, list) else []
        index = next((n for n, i in enumerate(items) if isinstance(i, dict) and i.get("title") == p.title), None)
        if p.kind == "add":
            if index is not None:
                continue
            if checklist is None:
                checklist = {"title": p.checklist or "Checklist"}
                checklists.append(checklist)
            checklist["items"] = items + [{"title": p.title}]
        elif p.kind == "remove" and checklist is not None and index is not None:
            checklist["items"] = items[:index] + items[index + 1:]
        elif p.kind == "due" and index is not None and p.due:
            items[index] = {**items[index], "due": p.due}
    if checklists:
        result["checklists"] = checklists
    return result


# --- a version's note, with the run it was improved from --------------------------------------------

_RUN_NOTE = re.compile(r"^\[run ([A-Za-z0-9]{1,64})\] ?")


def improve_note(run_id: str, note: str) -> str:
    """The note of a version saved by "Improve the playbook": it names the run (storage keeps notes as they
    are; `split_note` reads the run back)."""
    return f"[run {run_id}] {note}".strip()


def split_note(note: str) -> tuple[str, str]:
    """(the run a version was improved from or "", the note's text)."""
    match = _RUN_NOTE.match(note)
    if match is None:
        return "", note
    return match.group(1), note[match.end():]
