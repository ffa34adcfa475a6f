"""bot.domain.args: item, checklist and person references, titles, command variables."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain import args as A
from bot.router import split_args

LISTS = [["Acknowledge the page", "Open a bridge call", "Tell @channel about it"],
         ["Find the cause", "Deploy the fix"]]

titles = st.text(min_size=1, max_size=60)
checklists = st.lists(st.lists(titles, max_size=8), max_size=5)
words = st.lists(st.text(max_size=300), max_size=6).map(tuple)


def test_numbers_are_one_based_as_shown() -> None:
    assert A.find_item(("2.1",), LISTS).found == A.ItemAt(1, 0)
    assert A.find_item(("1.3",), LISTS).found.number == "1.3"  # type: ignore[union-attr]
    assert A.find_item(("3.1",), LISTS).kind == "out_of_range"
    assert A.find_item(("1.4",), LISTS).kind == "out_of_range"
    for bad in ("0.1", "1.0", "1.", ".1", "1.2.3", "-1.2", "1", "99999999999999999999.1", "+1.1"):
        found = A.find_item((bad,), LISTS)
        assert found.kind == "bad" and found.problem == "bad_number", bad


def test_title_words() -> None:
    assert A.find_item(("bridge",), LISTS).found == A.ItemAt(0, 1)
    assert A.find_item(("DEPLOY", "fix"), LISTS).found == A.ItemAt(1, 1)
    assert A.find_item(("ack",), LISTS).found == A.ItemAt(0, 0)  # a prefix of three letters or more
    ambiguous = A.find_item(("the",), LISTS)
    assert ambiguous.kind == "ambiguous" and len(ambiguous.matches) == 3
    assert A.find_item(("kubernetes",), LISTS).kind == "none"
    assert A.find_item(("@@@",), LISTS).problem == "no_words"
    assert A.find_item((), LISTS).problem == "missing"
    assert A.find_item(("x" * 10_000,), LISTS).problem == "too_long"


def test_an_exact_title_beats_longer_ones() -> None:
    lists = [["Deploy", "Deploy the fix"]]
    assert A.find_item(("deploy",), lists).found == A.ItemAt(0, 0)


def test_unicode_titles_fold_case_and_accents() -> None:
    lists = [["Café ouvert", "Ελέγξτε τον διακομιστή", "日本語のタスク"]]
    assert A.find_item(("cafe",), lists).found == A.ItemAt(0, 0)
    assert A.find_item(("ΕΛΕΓΞΤΕ",), lists).found == A.ItemAt(0, 1)
    assert A.find_item(("日本語のタスク",), lists).found == A.ItemAt(0, 2)


def test_checklists() -> None:
    titles_ = ["Triage", "Resolve", "Post mortem"]
    assert A.find_checklist("2", titles_).found == 1
    assert A.find_checklist("4", titles_).kind == "out_of_range"
    assert A.find_checklist("0", titles_).problem == "bad_checklist_number"
    assert A.find_checklist("resolve", titles_).found == 1
    lookup, title = A.split_checklist_and_title(("post", "mortem", "Write", "it"), titles_)
    assert lookup.found == 2 and title == "Write it"
    lookup, title = A.split_checklist_and_title(("1", "Page", "the", "DBA"), titles_)
    assert lookup.found == 0 and title == "Page the DBA"


def test_people() -> None:
    assert A.parse_person("@Bob").username == "bob"
    assert A.parse_person("bob.").username == "bob"
    assert A.parse_person("me").me
    assert A.parse_person("nobody", allow_nobody=True).nobody
    assert A.parse_person("nobody").username == "nobody"
    assert A.parse_person("@all").problem == "group_mention"
    assert A.parse_person("@here").problem == "group_mention"
    assert A.parse_person("<script>").problem == "not_username"
    assert A.parse_person("").problem == "missing"
    assert A.parse_person("@" + "a" * 100).problem == "too_long"


def test_titles() -> None:
    assert A.clean_title("  Call\tthe\u200b vendor \x00") == ("Call the vendor", "")
    assert A.clean_title("\u200b\u200b") == ("", "empty")
    assert A.clean_title("x" * (A.MAX_TITLE + 1)) == ("", "too_long")


def test_command_variables() -> None:
    summary = "service: billing-db\nSeverity = high\nsee $region=eu-west-1 and more\nempty:\n"
    found = A.summary_variables(summary)
    assert found == {"service": "billing-db", "Severity": "high", "region": "eu-west-1"}
    expansion = A.expand_command("/deploy $service --region $region --sev $severity $severity", found)
    assert expansion.command == "/deploy billing-db --region eu-west-1 --sev $severity $severity"
    assert expansion.undefined == ("severity",)  # case-sensitive, listed once
    # A value holding `$x` is not expanded again.
    assert A.expand_command("/x $a", {"a": "$b", "b": "no"}).command == "/x $b"


# -- properties ------------------------------------------------------------------------------------

@settings(max_examples=300)
@given(words, checklists)
def test_find_item_is_total_and_consistent(query: tuple[str, ...], lists: list[list[str]]) -> None:
    found = A.find_item(query, lists)
    assert found.kind in ("found", "ambiguous", "none", "out_of_range", "bad")
    if found.ok:
        at = found.found
        assert isinstance(at, A.ItemAt)
        assert 0 <= at.checklist < len(lists) and 0 <= at.item < len(lists[at.checklist])
    if found.kind == "ambiguous":
        assert len(found.matches) >= 2
        assert len(set(found.matches)) == len(found.matches)


@given(checklists.filter(lambda ls: any(ls)), st.data())
def test_every_shown_number_finds_its_item(lists: list[list[str]], data: st.DataObject) -> None:
    c = data.draw(st.sampled_from([i for i, items in enumerate(lists) if items]))
    i = data.draw(st.integers(0, len(lists[c]) - 1))
    assert A.find_item((f"{c + 1}.{i + 1}",), lists).found == A.ItemAt(c, i)


simple_titles = st.lists(st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=4).map(" ".join)


@given(st.lists(st.lists(simple_titles, max_size=6), min_size=1, max_size=4), st.data())
def test_a_unique_title_typed_back_finds_exactly_its_item(lists: list[list[str]], data: st.DataObject) -> None:
    flat = [(c, i, t) for c, items in enumerate(lists) for i, t in enumerate(items)]
    if not flat:
        return
    c, i, title = data.draw(st.sampled_from(flat))
    same = [t for _, _, t in flat if A.fold(t) == A.fold(title)]
    found = A.find_item(tuple(split_args(title)), lists)
    if len(same) == 1 and not A._NUMBERLIKE.match(title):
        assert found.found == A.ItemAt(c, i)
    else:
        # Never silently another item: a listed choice that includes this one, or its number.
        assert found.kind in ("ambiguous", "found", "out_of_range", "bad")
        if found.kind == "ambiguous":
            assert A.ItemAt(c, i) in found.matches


@given(st.lists(st.lists(simple_titles, max_size=6), min_size=1, max_size=4), words)
def test_a_found_title_contains_every_word_typed(lists: list[list[str]], query: tuple[str, ...]) -> None:
    found = A.find_item(query, lists)
    if found.ok and not (len(query) == 1 and A._NUMBERLIKE.match(query[0])):
        at = found.found
        assert isinstance(at, A.ItemAt)
        title = A.fold(lists[at.checklist][at.item])
        assert all(w in title for w in A._query_words(query))


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_split_args_never_fails_and_parsers_never_raise(text: str) -> None:
    parts = split_args(text)
    A.find_item(parts, LISTS)
    A.find_checklist(parts[0] if parts else "", ["Triage", "Resolve"])
    A.split_checklist_and_title(parts, ["Triage", "Resolve"])
    ref = A.parse_person(parts[0] if parts else "", allow_nobody=True)
    if ref.username:
        assert ref.username not in ("all", "channel", "here")
        assert len(ref.username) <= 64
    title, problem = A.clean_title(text)
    assert bool(title) != bool(problem)
    assert len(title) <= A.MAX_TITLE


@given(st.text(max_size=200), st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
                                                st.text(max_size=20)))
def test_expansion_leaves_no_defined_variable(command: str, variables: dict[str, str]) -> None:
    expansion = A.expand_command(command, variables)
    for name in expansion.undefined:
        assert name not in variables
        assert f"${name}" in expansion.command
    if "$" not in "".join(variables.values()):
        # Nothing defined is left to expand: a second pass changes nothing.
        assert A.expand_command(expansion.command, variables).command == expansion.command


@given(st.text(max_size=40))
def test_shown_is_one_bounded_printable_line(text: str) -> None:
    out = A.shown(text, 20)
    assert len(out) <= 20 and out.isprintable()
