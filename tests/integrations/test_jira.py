"""The Jira client against the Jira stand-in: create with ADF, labels, search, comment, transition, errors."""
from __future__ import annotations

from typing import AsyncIterator

import pytest

from bot.integrations import IntegrationError
from bot.integrations.jira import JiraClient, to_adf
from standins.jira import JiraStandIn, adf_text


@pytest.fixture
async def jira() -> AsyncIterator[tuple[JiraStandIn, JiraClient]]:
    standin = JiraStandIn()
    async with standin.serve() as url:
        client = JiraClient(url=url, email=standin.email, api_token=standin.api_token, now=lambda: 1_000_000.0)
        yield standin, client
        await client.close()


def test_plain_text_becomes_adf_paragraphs_breaks_and_links() -> None:
    doc = to_adf("First line\nsecond line\n\nSee https://chat.example.com/x.")
    assert doc["type"] == "doc" and doc["version"] == 1
    first, second = doc["content"]
    assert first == {"type": "paragraph", "content": [{"type": "text", "text": "First line"}, {"type": "hardBreak"},
                                                      {"type": "text", "text": "second line"}]}
    assert second["content"] == [
        {"type": "text", "text": "See "},
        {"type": "text", "text": "https://chat.example.com/x",
         "marks": [{"type": "link", "attrs": {"href": "https://chat.example.com/x"}}]},
        {"type": "text", "text": "."}]
    assert to_adf("") == {"type": "doc", "version": 1, "content": []}


async def test_create_find_comment_transition(jira: tuple[JiraStandIn, JiraClient]) -> None:
    standin, client = jira
    issue = await client.create_issue(project="OPS", issue_type="Incident", summary="Outage\nin eu",
                                      description="What broke.\n\nChannel: http://chat/x",
                                      labels=["playbooks-run-r1", "incident"])
    assert issue.key == "OPS-1" and issue.url == f"{standin.url}/browse/OPS-1"
    stored = standin.issues["OPS-1"]
    assert stored.summary == "Outage in eu" and stored.labels == ["playbooks-run-r1", "incident"]
    assert adf_text(stored.description) == "What broke.\n\nChannel: http://chat/x"
    sent = standin.sent("POST", "/rest/api/3/issue")[0]
    assert sent.headers["Authorization"].startswith("Basic ")

    assert await client.find_by_label("playbooks-run-r1") == issue
    assert await client.find_by_label("playbooks-run-other") is None
    assert standin.sent("POST", "/rest/api/3/search/jql")  # the current search, not the removed /search

    await client.comment("OPS-1", "Status: mitigated")
    assert adf_text(standin.issues["OPS-1"].comments[0]["body"]) == "Status: mitigated"

    await client.transition("OPS-1", "done")  # the transition's name, any case
    assert standin.issues["OPS-1"].status == "Done"
    await client.transition("OPS-1", "To Do")  # or the target status's name ("Reopen" leads there)
    assert standin.issues["OPS-1"].status == "To Do"


async def test_an_unknown_transition_lists_the_available_ones(jira: tuple[JiraStandIn, JiraClient]) -> None:
    _, client = jira
    issue = await client.create_issue(project="OPS", issue_type="Task", summary="x", description="", labels=[])
    with pytest.raises(IntegrationError) as caught:
        await client.transition(issue.key, "Closed")
    assert '"Start progress" (to In Progress)' in caught.value.message and '"Done" (to Done)' in caught.value.message
    assert not caught.value.retryable


async def test_oauth_bearer_against_the_cloud_id_base() -> None:
    standin = JiraStandIn()
    async with standin.serve() as url:
        client = JiraClient(url="https://acme.atlassian.net", cloud_id=standin.cloud_id,
                            access_token=standin.access_token, api_base=f"{url}/ex/jira/{standin.cloud_id}")
        try:
            issue = await client.create_issue(project="OPS", issue_type="Task", summary="x", description="d",
                                              labels=[])
            assert issue.url == "https://acme.atlassian.net/browse/OPS-1"
            assert (await client.check()).ok
        finally:
            await client.close()


async def test_check_says_who_and_a_bad_token_fails_with_a_hint(jira: tuple[JiraStandIn, JiraClient]) -> None:
    standin, client = jira
    result = await client.check()
    assert result.ok and "signed in as ops-bot@example.com" in result.detail
    bad = JiraClient(url=standin.url, email=standin.email, api_token="wrong")
    try:
        result = await bad.check()
        assert not result.ok and "401" in result.detail and "api_token in [jira]" in result.detail
        with pytest.raises(IntegrationError) as caught:
            await bad.comment("OPS-1", "x")
        assert caught.value.status == 401 and "Client must be authenticated" in caught.value.message
        assert not caught.value.retryable
    finally:
        await bad.close()


async def test_vendor_error_bodies_reach_the_message(jira: tuple[JiraStandIn, JiraClient]) -> None:
    standin, client = jira
    with pytest.raises(IntegrationError) as caught:
        await client.create_issue(project="NOPE", issue_type="Task", summary="x", description="", labels=[])
    assert caught.value.status == 400 and "project: valid project is required" in caught.value.message
    assert "project key" in caught.value.hint
    with pytest.raises(IntegrationError) as caught:
        await client.comment("OPS-99", "x")
    assert caught.value.status == 404 and "Issue does not exist" in caught.value.message
    assert "not found" in caught.value.hint
    standin.faults.add("/rest/api/3/issue", 403)
    with pytest.raises(IntegrationError) as caught:
        await client.create_issue(project="OPS", issue_type="Task", summary="x", description="", labels=[])
    assert caught.value.status == 403 and "permission" in caught.value.message and "Create issues" in caught.value.hint
    assert not standin.issues


async def test_429_gives_retry_after_and_500_is_retryable(jira: tuple[JiraStandIn, JiraClient]) -> None:
    standin, client = jira
    standin.faults.add("/rest/api/3/search/jql", 429, retry_after="7")
    with pytest.raises(IntegrationError) as caught:
        await client.find_by_label("x")
    assert caught.value.status == 429 and caught.value.retry_after_s == 7.0 and caught.value.retryable
    assert standin.requests[-1].path == "/rest/api/3/search/jql"
    standin.faults.add("/rest/api/3/issue", 500)
    with pytest.raises(IntegrationError) as caught:
        await client.create_issue(project="OPS", issue_type="Task", summary="x", description="", labels=[])
    assert caught.value.status == 500 and caught.value.retryable
    assert await client.find_by_label("x") is None  # the faults were used up


async def test_a_garbled_answer_is_an_integration_error(jira: tuple[JiraStandIn, JiraClient]) -> None:
    standin, client = jira
    standin.faults.add("/rest/api/3/myself", 200, body="<html>sign in</html>")
    result = await client.check()
    assert not result.ok and "not JSON" in result.detail
    standin.faults.add("/rest/api/3/issue", 502, body="<html>Bad gateway</html>")
    with pytest.raises(IntegrationError) as caught:
        await client.create_issue(project="OPS", issue_type="Task", summary="x", description="", labels=[])
    assert caught.value.status == 502 and "Bad gateway" in caught.value.message and caught.value.retryable


async def test_no_answer_is_status_0() -> None:
    client = JiraClient(url="http://127.0.0.1:9", email="a@b.c", api_token="t")
    try:
        with pytest.raises(IntegrationError) as caught:
            await client.find_by_label("x")
        assert caught.value.status == 0 and caught.value.retryable
        assert not caught.value.sent  # refused: the request never left the bot (nothing can have been made)
    finally:
        await client.close()
