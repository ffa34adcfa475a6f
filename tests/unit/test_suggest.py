from bot.domain.suggest import closest, distance

COMMANDS = ["add", "assign", "check", "due", "finish", "follow", "help", "info", "join", "leave", "list",
            "owner", "remove", "restore", "retro", "run", "run-command", "settings", "skip", "timeline", "todo",
            "uncheck", "unfollow", "unskip", "update"]


def test_distance_counts_edits_and_swaps() -> None:
    assert distance("chek", "check") == 1
    assert distance("cehck", "check") == 1
    assert distance("runn", "run") == 1
    assert distance("", "abc") == 3
    assert distance("kitten", "sitting") == 3


def test_typos_of_commands() -> None:
    assert closest("runn", COMMANDS) == ["run"]
    assert closest("chek", COMMANDS)[0] == "check"
    assert closest("fnish", COMMANDS) == ["finish"]
    assert closest("CHECK", COMMANDS) == ["check"]
    assert closest("fin", COMMANDS) == ["finish"]


def test_no_suggestion_for_something_else() -> None:
    assert closest("deploy", COMMANDS) == []
    assert closest("", COMMANDS) == []
    assert closest("x" * 10_000, COMMANDS) == []


def test_at_most_limit_nearest_first() -> None:
    found = closest("rn", COMMANDS)
    assert found[0] == "run" and len(found) <= 3
