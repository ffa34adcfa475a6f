"""Reading playbook files: one `*.toml` file, or every one in a folder."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from bot.playbooks.errors import PlaybookError, PlaybookInvalid
from bot.playbooks.model import FILE_MAX_BYTES, ID_MAX, Playbook
from bot.playbooks.validation import parse_playbook

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def load_playbook(path: Path | str) -> Playbook:
    """Read and validate one playbook file; raises PlaybookInvalid (with every problem)."""
    path = Path(path)
    check_file_name(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlaybookInvalid([PlaybookError(path, "", f"cannot read the file ({exc.strerror or exc})")]) from None
    return parse_playbook_file(path, raw)[1]


def check_file_name(path: Path) -> str:
    """The playbook id a file's name gives; raises PlaybookInvalid when the name is not a valid id."""
    stem = path.stem
    if not _ID_RE.match(stem) or len(stem) > ID_MAX:
        suggestion = re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-_")[:ID_MAX]
        hint = f'; rename it to "{suggestion}.toml"' if suggestion else ""
        raise PlaybookInvalid([PlaybookError(
            path, "", "the file name is the playbook id and must be lower-case letters, digits, "
                      f'"-" and "_", starting with a letter or digit{hint}')])
    return stem


def parse_playbook_file(path: Path, raw: bytes) -> tuple[dict[str, Any], Playbook]:
    """A playbook file's bytes -> its data dict (the interchange form) and the Playbook it describes;
    raises PlaybookInvalid (with every problem)."""
    stem = check_file_name(path)
    if len(raw) > FILE_MAX_BYTES:
        raise PlaybookInvalid([PlaybookError(path, "", f"the file is larger than {FILE_MAX_BYTES // 1024} KiB")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PlaybookInvalid([PlaybookError(path, "", "not UTF-8 text; save the file as UTF-8")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if match:
            where = f"line {match.group(1)}, column {match.group(2)}"
            raise PlaybookInvalid([PlaybookError(path, where, f"invalid TOML: {message[:match.start()]}")]) from None
        raise PlaybookInvalid([PlaybookError(path, "", f"invalid TOML: {message}")]) from None
    return data, parse_playbook(data, playbook_id=stem, path=path)


def load_playbooks(directory: Path | str) -> tuple[dict[str, Playbook], list[PlaybookError]]:
    """Load every `*.toml` in directory (not sub-folders; names starting with "." are skipped).

    Returns the valid playbooks by id, sorted by id, and every problem found in the others.
    """
    directory = Path(directory)
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "folder not found"
        return {}, [PlaybookError(directory, "", f"{what}; set [playbooks] dir in bot.toml")]
    playbooks: dict[str, Playbook] = {}
    errors: list[PlaybookError] = []
    for path in sorted(directory.glob("*.toml")):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            playbook = load_playbook(path)
        except PlaybookInvalid as exc:
            errors.extend(exc.errors)
            continue
        playbooks[playbook.id] = playbook
    return playbooks, errors
