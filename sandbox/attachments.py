"""Message attachments as the real server compares them, to decide whether an update is an edit.

app/post.go UpdatePost sets `EditAt` when the message changes, and otherwise
`if newPost.EditAt == oldPost.EditAt && (!oldPost.FileIds.Equals(newPost.FileIds) ||
!oldPost.AttachmentsEqual(newPost))`. model/post.go `Attachments()` takes `props["attachments"]` when it
is a list and round-trips each element through `json.Marshal` / `json.Unmarshal` into a SlackAttachment
(an element that does not decode is skipped; nil actions and nil fields are dropped);
`AttachmentsEqual` compares them pairwise with `SlackAttachment.Equals`
(model/slack_attachment.go, model/message_attachment.go), which looks at these fields only, so a change of,
say, an action's `style` is not an edit while a change of its `name` or of an attachment's `text` is.
Other props never count.
"""
from __future__ import annotations

from typing import Any

# SlackAttachment.Equals compares Id, then these strings, then Fields, Actions and Timestamp.
_STRINGS = ("fallback", "color", "pretext", "author_name", "author_link", "author_icon", "title",
            "title_link", "text", "image_url", "thumb_url", "footer", "footer_icon")
# PostAction.Equals compares these strings (not style, not disabled), the options' text and value,
# and the integration's url and context.
_ACTION_STRINGS = ("id", "type", "name", "data_source", "default_option", "cookie")


class _Undecodable(Exception):
    """json.Unmarshal into the Go struct would fail: the element is skipped."""


def _string(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Undecodable(key)
    return value


def _object(value: Any) -> dict[str, Any] | None:
    """A JSON value decoded into a struct: null is the zero struct, a non-object is an error."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Undecodable("object")
    return value


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Undecodable(key)
    return value


def _short(value: Any) -> bool:
    # SlackCompatibleBool.UnmarshalJSON: a bool, or the strings "true"/"false".
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise _Undecodable("short")


def _action(raw: dict[str, Any]) -> tuple[Any, ...]:
    strings = tuple(_string(raw, key) for key in _ACTION_STRINGS)
    _string(raw, "style")  # decoded (a wrong type fails the whole attachment) but not compared
    if raw.get("disabled") is not None and not isinstance(raw.get("disabled"), bool):
        raise _Undecodable("disabled")
    options = []
    for option in _list(raw, "options"):
        opt = _object(option) or {}
        options.append((_string(opt, "text"), _string(opt, "value")))
    integration = _object(raw.get("integration"))
    if integration is None:
        compared_integration: tuple[Any, ...] | None = None
    else:
        context = _object(integration.get("context"))
        compared_integration = (_string(integration, "url"), context or {})
    return strings + (tuple(options), compared_integration)


def _attachment(raw: Any) -> tuple[Any, ...]:
    data = _object(raw) or {}
    attachment_id = data.get("id")
    if attachment_id is None:
        attachment_id = 0
    elif isinstance(attachment_id, bool) or not isinstance(attachment_id, (int, float)) \
            or attachment_id != int(attachment_id):
        raise _Undecodable("id")  # int64
    strings = tuple(_string(data, key) for key in _STRINGS)
    fields = []
    for field in _list(data, "fields"):
        if field is None:
            continue  # "Ignoring nil fields"
        f = _object(field) or {}
        fields.append((_string(f, "title"), f.get("value"), _short(f.get("short"))))
    actions = []
    for action in _list(data, "actions"):
        if action is None:
            continue  # "Ignoring nil actions"
        actions.append(_action(_object(action) or {}))
    return (int(attachment_id),) + strings + (tuple(fields), tuple(actions), data.get("ts"))


def decoded(props: dict[str, Any] | None) -> list[tuple[Any, ...]]:
    """Post.Attachments(): what the server sees of props["attachments"], in order."""
    raw = (props or {}).get("attachments")
    if not isinstance(raw, list):
        return []
    out = []
    for element in raw:
        try:
            out.append(_attachment(element))
        except _Undecodable:
            continue
    return out


def equal(old_props: dict[str, Any] | None, new_props: dict[str, Any] | None) -> bool:
    """Post.AttachmentsEqual."""
    return decoded(old_props) == decoded(new_props)
