"""[schedule] in playbooks: validation placed at its keys, the export round trip, and the occurrences
(crontab weekdays, time zones, daylight saving time, the latest one due)."""
from __future__ import annotations

import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain import schedules as cron
from bot.playbooks import PlaybookInvalid, Schedule, parse_playbook
from bot.playbooks.export import to_toml

BERLIN = ZoneInfo("Europe/Berlin")
BASE = """
title = "Weekly review"
team = "eng"

[schedule]
cron = "0 9 * * MON"
timezone = "Europe/Berlin"
name = "Weekly review {{ date }}"
owner = "alice"
members = ["bob", "@Carol"]
"""


def parse(text: str) -> Any:
    return parse_playbook(tomllib.loads(text), playbook_id="review", path=Path("review.toml"))


def problems(text: str) -> dict[str, str]:
    with pytest.raises(PlaybookInvalid) as caught:
        parse(text)
    return {e.key: e.problem for e in caught.value.errors}


def ms(*parts: int, tz: Any = timezone.utc) -> int:
    return int(datetime(*parts, tzinfo=tz).timestamp() * 1000)


def local(at: int | None, tz: ZoneInfo = BERLIN) -> str:
    assert at is not None
    return datetime.fromtimestamp(at / 1000, tz=tz).strftime("%Y-%m-%d %H:%M %Z")


def test_a_schedule_is_read_with_its_defaults() -> None:
    pb = parse(BASE)
    assert pb.schedule == Schedule(cron="0 9 * * MON", timezone="Europe/Berlin", name="Weekly review {{ date }}",
                                   owner="alice", members=("bob", "carol"), enabled=True)
    assert {"alice", "bob", "carol"} <= pb.usernames()
    short = parse('title = "T"\nteam = "eng"\n[schedule]\ncron = "*/15  * * * *"\nowner = "dave"\nenabled = false\n')
    assert short.schedule == Schedule(cron="*/15 * * * *", timezone="UTC", name=cron.DEFAULT_NAME, owner="dave",
                                      enabled=False)
    assert parse('title = "T"').schedule is None


@pytest.mark.parametrize(("line", "key", "words"), [
    ('cron = "0 25 * * *"', "schedule.cron", 'the hour field "25" is not valid'),
    ('cron = "61 9 * * *"', "schedule.cron", 'the minute field "61" is not valid'),
    ('cron = "0 9 32 * *"', "schedule.cron", 'the day-of-month field "32" is not valid'),
    ('cron = "0 9 * 13 *"', "schedule.cron", 'the month field "13" is not valid'),
    ('cron = "0 9 * * 8"', "schedule.cron", 'the weekday field "8" is not valid'),
    ('cron = "0 9 * * FUNDAY"', "schedule.cron", 'the weekday field "FUNDAY" is not valid'),
    ('cron = "0 9 * *"', "schedule.cron", "expected 5 fields (minute hour day-of-month month weekday)"),
    ('cron = "0 9 1 * MON"', "schedule.cron", "not both"),
    ('cron = ""', "schedule.cron", ""),
    ('timezone = "Europe/Berlni"', "schedule.timezone", 'did you mean "Europe/Berlin"?'),
    ('timezone = "Mars/Olympus"', "schedule.timezone", "is not an IANA time zone name"),
    ('timezone = "europe/berlin"', "schedule.timezone", 'did you mean "Europe/Berlin"?'),
    ('name = "Review {{ dat }}"', "schedule.name", "'dat' is undefined; the name may use date, time"),
    ('name = "Review {{ date "', "schedule.name", "is not a valid template"),
    ('name = "{{ at.__class__ }}"', "schedule.name", "unsafe"),
    ('owner = "not a name"', "schedule.owner", ""),
    ('members = ["ok", "Not Valid"]', "schedule.members[2]", ""),
    ('enabled = "yes"', "schedule.enabled", ""),
    ('every = "day"', "schedule.every", "unknown key"),
])
def test_each_bad_value_is_reported_at_its_key(line: str, key: str, words: str) -> None:
    field = line.split(" = ")[0]
    lines = [x for x in BASE.splitlines() if not x.startswith(field + " ")]
    found = problems("\n".join(lines) + "\n" + line + "\n")
    assert key in found, found
    assert words in found[key]


def test_a_schedule_needs_an_owner_a_cron_and_a_team() -> None:
    found = problems('title = "T"\n[schedule]\ntimezone = "UTC"\n')
    assert found["schedule.cron"].startswith("required")
    assert found["schedule.owner"].startswith("required")
    assert found["team"].startswith("required with [schedule]")


def test_a_scheduled_run_in_an_existing_channel_names_it() -> None:
    found = problems(BASE.replace('team = "eng"', 'team = "eng"\nchannel_mode = "existing"'))
    assert found["channel"].startswith('required with [schedule] and channel_mode = "existing"')
    ok = parse(BASE.replace('team = "eng"', 'team = "eng"\nchannel_mode = "existing"\nchannel = "standups"'))
    assert ok.schedule is not None


def test_the_schedule_round_trips_through_the_toml_export() -> None:
    data = tomllib.loads(BASE)
    text = to_toml(data)
    assert tomllib.loads(text) == data
    assert parse(text) == parse(BASE)


# --- occurrences ------------------------------------------------------------------------------------

def test_weekday_numbers_are_crontabs_not_apschedulers() -> None:
    """crontab: 0 and 7 are Sunday, 1 is Monday (APScheduler 3 alone would read 0 as Monday)."""
    after = ms(2026, 3, 4)  # a Wednesday
    for expression, weekday in [("0 9 * * 0", "Sunday"), ("0 9 * * 7", "Sunday"), ("0 9 * * 1", "Monday"),
                                ("0 9 * * MON", "Monday"), ("0 9 * * sat", "Saturday")]:
        at = cron.next_occurrence(cron.parse_cron(expression, BERLIN), after)
        assert at is not None
        assert datetime.fromtimestamp(at / 1000, tz=BERLIN).strftime("%A") == weekday, expression
    weekdays = cron.parse_cron("0 9 * * 1-5", BERLIN)
    days = [datetime.fromtimestamp(a / 1000, tz=BERLIN).strftime("%a")
            for a, _ in zip(cron.occurrences(weekdays, after), range(7), strict=False)]
    assert days == ["Wed", "Thu", "Fri", "Mon", "Tue", "Wed", "Thu"]
    every_other = cron.parse_cron("0 9 * * */2", BERLIN)  # 0,2,4,6: Sun, Tue, Thu, Sat
    days = [datetime.fromtimestamp(a / 1000, tz=BERLIN).strftime("%a")
            for a, _ in zip(cron.occurrences(every_other, after), range(4), strict=False)]
    assert days == ["Thu", "Sat", "Sun", "Tue"]


def test_the_next_occurrence_is_in_the_schedules_time_zone() -> None:
    monday_nine = cron.parse_cron("0 9 * * MON", BERLIN)
    assert local(cron.next_occurrence(monday_nine, ms(2026, 3, 4))) == "2026-03-09 09:00 CET"
    assert cron.next_occurrence(monday_nine, ms(2026, 3, 9, 8)) == ms(2026, 3, 16, 8)  # strictly after
    assert local(cron.next_occurrence(monday_nine, ms(2026, 3, 29))) == "2026-03-30 09:00 CEST"
    assert cron.next_occurrence(monday_nine, ms(2026, 3, 29)) == ms(2026, 3, 30, 7)  # 07:00 UTC in summer
    utc = cron.parse_cron("0 9 * * MON")
    assert cron.next_occurrence(utc, ms(2026, 3, 29)) == ms(2026, 3, 30, 9)


def test_a_time_the_clock_skips_happens_once_an_hour_later() -> None:
    """Spring forward in Berlin (2026-03-29, 02:00 -> 03:00): 02:30 does not exist; it runs at 03:30."""
    nightly = cron.parse_cron("30 2 * * *", BERLIN)
    got = [local(a) for a, _ in zip(cron.occurrences(nightly, ms(2026, 3, 27, 12)), range(3), strict=False)]
    assert got == ["2026-03-28 02:30 CET", "2026-03-29 03:30 CEST", "2026-03-30 02:30 CEST"]


def test_a_time_the_clock_repeats_happens_once_at_its_first_instance() -> None:
    """Fall back in Berlin (2026-10-25, 03:00 -> 02:00): 02:30 exists twice; CronTrigger gives both, the
    schedule starts one run, at the first."""
    nightly = cron.parse_cron("30 2 * * *", BERLIN)
    got = [local(a) for a, _ in zip(cron.occurrences(nightly, ms(2026, 10, 23, 12)), range(3), strict=False)]
    assert got == ["2026-10-24 02:30 CEST", "2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"]
    hourly = cron.parse_cron("30 * * * *", BERLIN)
    got = [local(a) for a, _ in zip(cron.occurrences(hourly, ms(2026, 10, 24, 22)), range(4), strict=False)]
    assert got == ["2026-10-25 00:30 CEST", "2026-10-25 01:30 CEST", "2026-10-25 02:30 CEST",
                   "2026-10-25 03:30 CET"]


def test_the_latest_occurrence_due() -> None:
    monday_nine = cron.parse_cron("0 9 * * MON", BERLIN)
    thursday = ms(2026, 3, 12, 12)
    assert local(cron.latest_occurrence(monday_nine, thursday, 0)) == "2026-03-09 09:00 CET"
    assert cron.latest_occurrence(monday_nine, ms(2026, 3, 9, 8), 0) == ms(2026, 3, 9, 8)  # at the moment itself
    assert cron.latest_occurrence(monday_nine, thursday, ms(2026, 3, 10)) is None  # saved after it
    minutely = cron.parse_cron("* * * * *")
    assert cron.latest_occurrence(minutely, ms(2026, 3, 12, 12) + 59_000, 0) == ms(2026, 3, 12, 12)
    yearly = cron.parse_cron("0 0 1 1 *")
    assert cron.latest_occurrence(yearly, thursday, 0) == ms(2026, 1, 1)


def test_the_run_name_is_rendered_in_a_sandbox_with_the_occurrence_in_its_zone() -> None:
    at = ms(2026, 3, 9, 8)  # 09:00 in Berlin
    assert cron.render_name("Weekly review {{ date }}", at, BERLIN, "Review") == "Weekly review 2026-03-09"
    assert cron.render_name("{{ playbook }} {{ weekday }} {{ time }} {{ timezone }} w{{ week }}", at, BERLIN,
                            "Review") == "Review Monday 09:00 Europe/Berlin w11"
    assert cron.render_name("{{ at.strftime('%d %B') }}\n  {{ year }}", at, BERLIN, "R") == "09 March 2026"
    with pytest.raises(cron.ScheduleError, match="unsafe"):
        cron.render_name("{{ at.__class__.__mro__ }}", at, BERLIN, "R")


def test_the_origin_names_the_schedule() -> None:
    assert cron.describe("0  9 * * MON", "Europe/Berlin") == "the schedule (0 9 * * MON, Europe/Berlin)"
