"""The PyGithub adapter against mocked HTTP (``responses``): what a handler would see."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
import responses

from bot.github.adapter import PyGithubAdapter
from bot.github.port import CheckRunOutput, GitHubError, PermissionDenied
from bot.github.retry import CappedRetry

API = "https://api.github.com:443"
REPO = f"{API}/repos/octo/demo"
BOT = "cvf-governance[bot]"


def adapter(**kw: object) -> PyGithubAdapter:
    kw.setdefault("seconds_between_writes", None)
    return PyGithubAdapter("octo/demo", token="t0ken-secret", bot_login=BOT, **kw)  # type: ignore[arg-type]


def pull_json(number: int = 7) -> dict[str, object]:
    repo = {"full_name": "octo/demo", "name": "demo", "owner": {"login": "octo"}}
    return {"number": number, "title": "Add RFC", "body": None, "user": {"login": "alice"},
            "state": "open", "merged": False, "draft": False,
            "url": f"https://api.github.com/repos/octo/demo/pulls/{number}",
            "head": {"sha": "abc123", "ref": "rfc-1", "repo": {**repo, "full_name": "alice/demo"}},
            "base": {"sha": "def456", "ref": "main", "repo": repo},
            "labels": [{"name": "rfc"}], "created_at": "2024-01-02T03:04:05Z",
            "html_url": "https://github.com/octo/demo/pull/7", "maintainer_can_modify": True}


def comment_json(cid: int, login: str, body: str, kind: str = "User") -> dict[str, object]:
    return {"id": cid, "user": {"login": login, "type": kind}, "body": body,
            "created_at": "2024-01-02T03:04:05Z", "updated_at": "2024-01-02T03:04:05Z",
            "html_url": f"https://github.com/octo/demo/issues/7#issuecomment-{cid}"}


@responses.activate
def test_reads_a_pull_request_with_one_request() -> None:
    responses.get(f"{REPO}/pulls/7", json=pull_json())
    gh = adapter()
    pr = gh.get_pull(7)
    assert (pr.title, pr.body, pr.author, pr.head_repo, pr.base_repo, pr.labels) == (
        "Add RFC", "", "alice", "alice/demo", "octo/demo", ("rfc",))
    assert pr.is_fork and pr.maintainer_can_modify
    assert gh.stats.requests == 1
    assert responses.calls[0].request.headers["Authorization"] == "token t0ken-secret"


@responses.activate
def test_502_is_retried_and_every_request_counted() -> None:
    responses.get(f"{REPO}/pulls/7", status=502, json={"message": "Bad gateway"})
    responses.get(f"{REPO}/pulls/7", status=502, json={"message": "Bad gateway"})
    responses.get(f"{REPO}/pulls/7", json=pull_json())
    gh = adapter()
    assert gh.get_pull(7).number == 7
    assert (gh.stats.requests, gh.stats.retries) == (3, 2)


@responses.activate
def test_5xx_that_never_recovers_is_a_clear_error() -> None:
    responses.get(f"{REPO}/pulls/7", status=503, json={"message": "unavailable"})
    gh = adapter(attempts=2)
    with pytest.raises(GitHubError, match=r"kept failing \(503\).*after 2 retries"):
        gh.get_pull(7)
    assert gh.stats.requests == 3


@responses.activate
def test_secondary_rate_limit_is_retried() -> None:
    limited = {"message": "You have exceeded a secondary rate limit. Please wait a few "
                          "minutes before you try again."}
    responses.post(f"{REPO}/issues/7/comments", status=403, json=limited,
                   headers={"Retry-After": "2"})
    responses.post(f"{REPO}/issues/7/comments", status=403, json=limited)
    responses.post(f"{REPO}/issues/7/comments", status=201,
                   json=comment_json(11, BOT, "hello", "Bot"))
    gh = adapter()
    comment = gh.create_comment(7, "hello")
    assert comment.id == 11 and comment.author_is_bot
    assert gh.stats.retries == 2


@responses.activate
def test_retry_after_longer_than_the_cap_is_an_error_not_a_long_sleep() -> None:
    responses.get(f"{REPO}/pulls/7", status=429, json={"message": "slow down"},
                  headers={"Retry-After": "3600"})
    gh = adapter(max_wait=30)
    started = time.monotonic()
    with pytest.raises(GitHubError, match=r"3600s wait, longer than github.retry.max_wait \(30s\)"):
        gh.get_pull(7)
    assert time.monotonic() - started < 5


@responses.activate
def test_primary_rate_limit_beyond_the_cap_raises_at_once() -> None:
    reset = int(time.time()) + 3600
    responses.get(f"{REPO}/pulls/7", status=403,
                  json={"message": "API rate limit exceeded for installation ID 1."},
                  headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "5000",
                           "X-RateLimit-Reset": str(reset)})
    gh = adapter(max_wait=60)
    with pytest.raises(GitHubError, match="rate limit.*longer than github.retry.max_wait"):
        gh.get_pull(7)
    assert len(responses.calls) == 1


def test_waits_are_capped_and_retry_after_respected() -> None:
    slept: list[float] = []
    retry = CappedRetry(max_wait=10, sleeper=slept.append, total=3, backoff_factor=0.5)

    class Answer:
        headers = {"Retry-After": "4"}

    retry.sleep(Answer())
    assert slept == [4.0]
    many = retry.new(history=tuple([object()] * 8))  # type: ignore[list-item]
    many.history = tuple(type("H", (), {"redirect_location": None})() for _ in range(8))
    many.sleep()
    assert slept[-1] == 10.0


@responses.activate
def test_update_file_rereads_and_retries_after_a_409() -> None:
    def content(text: str, sha: str) -> dict[str, object]:
        return {"type": "file", "encoding": "base64", "path": "rfcs/index.md", "name": "index.md",
                "sha": sha, "content": base64.b64encode(text.encode()).decode(),
                "url": "https://api.github.com/repos/octo/demo/contents/rfcs/index.md"}

    url = f"{REPO}/contents/rfcs/index.md"
    responses.get(url, json=content("a\n", "sha-1"))
    responses.put(url, status=409, json={"message": "rfcs/index.md does not match sha-1"})
    responses.get(url, json=content("a\nb\n", "sha-2"))
    responses.put(url, status=200, json={"content": {"sha": "sha-3"}, "commit": {"sha": "c0ffee"}})
    gh = adapter()
    result = gh.update_file("rfcs/index.md", "main", lambda old: (old or "") + "c\n", "index")
    assert result == "c0ffee"
    puts = [c for c in responses.calls if c.request.method == "PUT"]
    last = json.loads(puts[-1].request.body)
    assert last["sha"] == "sha-2" and last["branch"] == "main"
    assert base64.b64decode(last["content"]).decode() == "a\nb\nc\n"


@responses.activate
def test_update_file_without_a_change_writes_nothing() -> None:
    responses.get(f"{REPO}/contents/a.txt", status=404, json={"message": "Not Found"})
    gh = adapter()
    assert gh.update_file("a.txt", "main", lambda old: None, "nothing") is None
    assert gh.stats.writes == 0


@responses.activate
def test_sticky_comment_is_never_a_users_comment_quoting_the_marker() -> None:
    marker = "<!-- cvf:rfc-status -->"
    responses.get(f"{REPO}/issues/7/comments", json=[
        comment_json(1, "mallory", f"{marker}\nI am the bot now"),
        comment_json(2, "cvf-governance", f"{marker}\nlook-alike login"),
        comment_json(3, BOT, f"quoting you: {marker}", "Bot"),
    ])
    responses.post(f"{REPO}/issues/7/comments", status=201,
                   json=comment_json(4, BOT, f"{marker}\nstatus", "Bot"))
    gh = adapter()
    made = gh.upsert_sticky_comment(7, marker, "status")
    assert made.id == 4
    sent = [c for c in responses.calls if c.request.method != "GET"]
    assert len(sent) == 1 and sent[0].request.method == "POST"
    assert json.loads(sent[0].request.body)["body"] == f"{marker}\nstatus"


@responses.activate
def test_sticky_comment_edited_in_place_or_left_alone() -> None:
    marker = "<!-- cvf:rfc-status -->"
    responses.get(f"{REPO}/issues/7/comments", json=[
        comment_json(5, BOT, f"{marker}\nold status", "Bot")])
    responses.patch(f"{REPO}/issues/comments/5", json=comment_json(5, BOT, f"{marker}\nnew", "Bot"))
    gh = adapter()
    assert gh.upsert_sticky_comment(7, marker, "new").id == 5
    assert gh.upsert_sticky_comment(7, marker, "old status").id == 5  # unchanged: no write
    assert [c.request.method for c in responses.calls] == ["GET", "PATCH", "GET"]


@responses.activate
def test_403_on_a_write_names_the_missing_permission() -> None:
    responses.get(re.compile(rf"{re.escape(REPO)}/commits/abc/check-runs.*"),
                  json={"total_count": 0, "check_runs": []})
    responses.post(f"{REPO}/check-runs", status=403,
                   json={"message": "Resource not accessible by integration"})
    gh = adapter()
    with pytest.raises(PermissionDenied, match="'checks: write' permission") as info:
        gh.set_check_run("abc", "cvf/rfc", status="completed", conclusion="success",
                         output=CheckRunOutput(title="ok", summary="fine"))
    assert "t0ken-secret" not in str(info.value)


@responses.activate
def test_check_run_updated_when_present_and_annotations_sent_in_fifties() -> None:
    responses.get(re.compile(rf"{re.escape(REPO)}/commits/abc/check-runs.*"),
                  json={"total_count": 1, "check_runs": [{"id": 99, "name": "cvf/rfc"}]})
    responses.patch(f"{REPO}/check-runs/99", json={"id": 99})
    notes = tuple({"path": "a.md", "start_line": i, "end_line": i,
                   "annotation_level": "warning", "message": "m"} for i in range(120))
    gh = adapter()
    run = gh.set_check_run("abc", "cvf/rfc", status="completed", conclusion="failure",
                           output=CheckRunOutput(title="t", summary="s", annotations=notes))
    assert run == 99
    patches = [json.loads(c.request.body) for c in responses.calls if c.request.method == "PATCH"]
    assert [len(p["output"]["annotations"]) for p in patches] == [50, 50, 20]


@responses.activate
def test_dry_run_reads_but_sends_no_write() -> None:
    marker = "<!-- cvf:routing -->"
    responses.get(f"{REPO}/issues/7/comments", json=[])
    responses.get(f"{REPO}/contents/x.md", status=404, json={"message": "Not Found"})
    gh = adapter(dry_run=True)
    gh.upsert_sticky_comment(7, marker, "hello")
    gh.add_labels(7, ["risk:high"])
    gh.remove_label(7, "risk:low")
    assert gh.update_file("x.md", "main", lambda old: "new\n", "add x") == "dry-run"
    assert {c.request.method for c in responses.calls} == {"GET"}
    log = [(w.method, w.path) for w in gh.stats.write_log]
    assert log == [("POST", "/repos/octo/demo/issues/7/comments"),
                   ("POST", "/repos/octo/demo/issues/7/labels"),
                   ("DELETE", "/repos/octo/demo/issues/7/labels/risk%3Alow"),
                   ("PUT", "/repos/octo/demo/contents/x.md")]
    assert gh.stats.write_log[1].body == {"labels": ["risk:high"]}


@responses.activate
def test_comments_are_read_across_pages() -> None:
    page2 = "https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=2"
    responses.get(f"{REPO}/issues/7/comments", json=[comment_json(1, "a", "x")],
                  headers={"Link": f'<{page2}>; rel="next"'},
                  match=[responses.matchers.query_param_matcher({"per_page": "100"})])
    responses.get("https://api.github.com:443/repositories/1/issues/7/comments",
                  json=[comment_json(2, "b", "y")])
    gh = adapter()
    assert [c.author for c in gh.list_issue_comments(7)] == ["a", "b"]
    assert gh.stats.requests == 2


@responses.activate
def test_team_lookup_failure_is_never_an_empty_team() -> None:
    from bot.github.port import TeamLookupError

    responses.get("https://api.github.com:443/orgs/octo/teams/core/memberships/alice",
                  status=404, json={"message": "Not Found"})
    responses.get("https://api.github.com:443/orgs/octo/teams/core",
                  status=404, json={"message": "Not Found"})
    gh = adapter()
    with pytest.raises(TeamLookupError, match="@octo/core"):
        gh.is_team_member("octo", "core", "alice")


@responses.activate
def test_api_url_for_enterprise_keeps_its_path_prefix() -> None:
    responses.get("https://ghe.example.com:443/api/v3/repos/octo/demo/pulls/7", json=pull_json())
    gh = adapter(api_url="https://ghe.example.com/api/v3")
    assert gh.get_pull(7).number == 7


@responses.activate
def test_racing_deliveries_leave_one_sticky_comment() -> None:
    marker = "<!-- cvf:rfc-status -->"
    other = comment_json(20, BOT, f"{marker}\nstatus", "Bot")  # a racer created it meanwhile
    mine = comment_json(21, BOT, f"{marker}\nstatus", "Bot")
    responses.get(f"{REPO}/issues/7/comments", json=[])
    responses.post(f"{REPO}/issues/7/comments", status=201, json=mine)
    responses.get(f"{REPO}/issues/7/comments", json=[other, mine])
    responses.delete(f"{REPO}/issues/comments/21", status=204)
    gh = adapter()
    kept = gh.upsert_sticky_comment(7, marker, "status")
    assert kept.id == 20
    assert [(c.request.method, c.request.url.rsplit("/", 2)[-1]) for c in responses.calls
            if c.request.method != "GET"] == [("POST", "comments"), ("DELETE", "21")]


@responses.activate
def test_one_delivery_reads_a_pull_once_until_it_changes_it() -> None:
    responses.get(f"{REPO}/pulls/7", json=pull_json())
    responses.post(f"{REPO}/issues/7/labels", json=[{"name": "rfc"}, {"name": "x"}])
    responses.delete(f"{REPO}/issues/7/labels/RFC", json=[{"name": "x"}])
    gh = adapter()
    gh.get_pull(7)
    gh.get_pull(7)
    assert gh.stats.requests == 1
    gh.add_labels(7, ["x"])
    # The bot's own label change is known (issue 15): the pull request shows it unread.
    assert gh.get_pull(7).labels == ("rfc", "x")
    gh.remove_label(7, "RFC")
    assert gh.get_pull(7).labels == ("x",)
    assert [c.request.method for c in responses.calls] == ["GET", "POST", "DELETE"]


@responses.activate
def test_a_rate_limit_that_outlasts_the_retries_is_not_called_a_missing_permission() -> None:
    limited = {"message": "You have exceeded a secondary rate limit. Please wait a few "
                          "minutes before you try again."}
    responses.post(f"{REPO}/issues/7/labels", status=403, json=limited,
                   headers={"Retry-After": "1"})
    gh = adapter(attempts=2)
    with pytest.raises(GitHubError, match="kept rate-limiting") as info:
        gh.add_labels(7, ["x"])
    assert not isinstance(info.value, PermissionDenied)
    assert len(responses.calls) == 3
