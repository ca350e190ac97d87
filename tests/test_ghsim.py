"""The GitHub simulator, driven by real PyGithub over real HTTP on 127.0.0.1.

What the adapter will do against GitHub, done against the simulator: if PyGithub reads
and writes it correctly here, an adapter test on the simulator means something.
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth, Github, GithubException
from github.GithubRetry import GithubRetry

from tests.ghsim import GitHubSimulator, blob_sha

REPO = "octo-org/governance"
TOKEN = "test-token"


def client(sim: GitHubSimulator, token: str = TOKEN, **kwargs: object) -> Github:
    kwargs.setdefault("retry", GithubRetry(total=3, backoff_factor=0))
    return Github(base_url=sim.base_url, auth=Auth.Token(token), seconds_between_requests=0,
                  seconds_between_writes=0, timeout=10, **kwargs)  # type: ignore[arg-type]


def raw(sim: GitHubSimulator, method: str, path: str, **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"token {TOKEN}", **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return requests.request(method, sim.base_url + path, headers=headers, timeout=10,
                            **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def seeded(ghsim: GitHubSimulator):
    repo = ghsim.repo(REPO)
    repo.put_file("README.md", "hello\n")
    repo.put_file("rfcs/0000-template.md", "# Template\n")
    pr = repo.add_pull(title="RFC: widgets", body="Adds widgets", author="alice",
                       files={"rfcs/0001-widgets.md": "# Widgets\n", "README.md": "hi\n"},
                       labels=["rfc"])
    return repo, pr


def test_pull_files_and_contents_at_the_head(ghsim, seeded):
    repo, pr = seeded
    gh_repo = client(ghsim).get_repo(REPO)
    assert gh_repo.default_branch == "main"
    pull = gh_repo.get_pull(pr.number)
    assert (pull.title, pull.user.login, pull.state, pull.draft) == (
        "RFC: widgets", "alice", "open", False)
    assert pull.head.sha == pr.pull.head_sha and pull.base.ref == "main"
    assert [label.name for label in pull.labels] == ["rfc"]
    assert [(f.filename, f.status) for f in pull.get_files()] == [
        ("rfcs/0001-widgets.md", "added"), ("README.md", "modified")]
    at_head = gh_repo.get_contents("README.md", ref=pull.head.sha)
    assert not isinstance(at_head, list)
    assert at_head.decoded_content == b"hi\n" and at_head.sha == blob_sha(b"hi\n")
    assert gh_repo.get_contents("README.md").decoded_content == b"hello\n"  # type: ignore[union-attr]
    listing = gh_repo.get_contents("rfcs")
    assert isinstance(listing, list) and [c.path for c in listing] == ["rfcs/0000-template.md"]
    with pytest.raises(GithubException) as missing:
        gh_repo.get_contents("nope.md")
    assert missing.value.status == 404


def test_paginated_comments_follow_link_headers(ghsim, seeded):
    repo, pr = seeded
    for i in range(7):
        repo.add_comment(pr.number, f"user{i}", f"comment {i}")
    gh = client(ghsim, per_page=3)
    issue = gh.get_repo(REPO).get_issue(pr.number)
    ghsim.reset_log()
    bodies = [c.body for c in issue.get_comments()]
    assert bodies == [f"comment {i}" for i in range(7)]
    pages = [r for r in ghsim.requests if r.path.endswith("/comments")]
    assert [r.query.get("page", "1") for r in pages] == ["1", "2", "3"]


def test_comment_create_edit_delete(ghsim, seeded):
    repo, pr = seeded
    issue = client(ghsim).get_repo(REPO).get_issue(pr.number)
    comment = issue.create_comment("<!-- cvf:rfc-status -->\nvotes: 0")
    assert comment.user.login == "cvf-governance[bot]"
    comment.edit("<!-- cvf:rfc-status -->\nvotes: 1")
    assert [c.body for c in repo.comments_on(pr.number)] == ["<!-- cvf:rfc-status -->\nvotes: 1"]
    assert [(w.method, w.status) for w in ghsim.writes()] == [("POST", 201), ("PATCH", 200)]
    comment.delete()
    assert repo.comments_on(pr.number) == []
    with pytest.raises(GithubException) as too_long:
        issue.create_comment("x" * 65_537)
    assert too_long.value.status == 422


def test_reactions_on_issue_and_comment(ghsim, seeded):
    repo, pr = seeded
    repo.add_reaction("alice", "+1", number=pr.number)
    repo.add_reaction("bob", "-1", number=pr.number)
    comment = repo.add_comment(pr.number, "carol", "/rfc approve")
    gh_repo = client(ghsim).get_repo(REPO)
    issue = gh_repo.get_issue(pr.number)
    assert [(r.user.login, r.content) for r in issue.get_reactions()] == [
        ("alice", "+1"), ("bob", "-1")]
    gh_comment = issue.get_comment(comment.id)
    first = gh_comment.create_reaction("eyes")
    again = gh_comment.create_reaction("eyes")
    assert first.id == again.id
    assert [(r.user.login, r.content) for r in gh_comment.get_reactions()] == [
        ("cvf-governance[bot]", "eyes")]
    assert [r.status for r in ghsim.writes("POST", "/reactions$")] == [201, 200]
    gh_comment.delete_reaction(first.id)
    assert repo.reactions_on(comment_id=comment.id) == []


def test_labels_add_remove_and_missing_label(ghsim, seeded):
    repo, pr = seeded
    issue = client(ghsim).get_repo(REPO).get_issue(pr.number)
    issue.add_to_labels("rfc:final-comment-period", "rfc")
    assert repo.labels_on(pr.number) == ["rfc", "rfc:final-comment-period"]
    issue.remove_from_labels("rfc")
    assert repo.labels_on(pr.number) == ["rfc:final-comment-period"]
    with pytest.raises(GithubException) as missing:
        issue.remove_from_labels("rfc")
    assert missing.value.status == 404 and missing.value.data["message"] == "Label does not exist"


def test_check_runs_create_update_and_list_by_name(ghsim, seeded):
    repo, pr = seeded
    gh_repo = client(ghsim).get_repo(REPO)
    run = gh_repo.create_check_run(name="cvf/routing", head_sha=pr.pull.head_sha,
                                   status="in_progress",
                                   output={"title": "Routing", "summary": "checking"})
    run.edit(status="completed", conclusion="success",
             output={"title": "Routing", "summary": "R1: one review"})
    listed = gh_repo.get_commit(pr.pull.head_sha).get_check_runs(check_name="cvf/routing")
    assert [(r.id, r.status, r.conclusion, r.output.summary) for r in listed] == [
        (run.id, "completed", "success", "R1: one review")]
    stored = repo.check_runs_for(pr.pull.head_sha, "cvf/routing")[0]
    assert stored.history == [("in_progress", None), ("completed", "success")]
    with pytest.raises(GithubException) as bad:
        gh_repo.create_check_run(name="x", head_sha=pr.pull.head_sha, status="completed")
    assert bad.value.status == 422


def test_contents_update_with_sha_and_conflicts(ghsim, seeded):
    repo, _ = seeded
    gh_repo = client(ghsim).get_repo(REPO)
    current = gh_repo.get_contents("README.md")
    assert not isinstance(current, list)
    result = gh_repo.update_file("README.md", "docs: greet", "hello, world\n", current.sha,
                                 branch="main")
    assert result["content"].sha == blob_sha(b"hello, world\n")
    assert repo.file_text("README.md") == "hello, world\n"
    with pytest.raises(GithubException) as stale:
        gh_repo.update_file("README.md", "docs: again", "lost\n", current.sha, branch="main")
    assert stale.value.status == 409 and "does not match" in stale.value.data["message"]
    created = gh_repo.create_file("rfcs/index.md", "index", "# Index\n", branch="main")
    assert created["commit"].sha and repo.file_text("rfcs/index.md") == "# Index\n"
    no_sha = raw(ghsim, "PUT", f"/repos/{REPO}/contents/README.md",
                 json={"message": "m", "content": base64.b64encode(b"x").decode()})
    assert no_sha.status_code == 422 and "sha" in no_sha.json()["message"]
    assert repo.file_text("README.md") == "hello, world\n"


def test_a_concurrent_commit_makes_a_stale_put_conflict(ghsim, seeded):
    repo, _ = seeded
    gh_repo = client(ghsim).get_repo(REPO)
    read = gh_repo.get_contents("README.md")
    assert not isinstance(read, list)
    repo.concurrent_edit("README.md", lambda old: (old or "") + "theirs\n")
    with pytest.raises(GithubException) as stale:
        gh_repo.update_file("README.md", "mine", "mine\n", read.sha, branch="main")
    assert stale.value.status == 409
    assert repo.file_text("README.md") == "hello\ntheirs\n"
    fresh = gh_repo.get_contents("README.md")
    gh_repo.update_file("README.md", "mine", "mine\n", fresh.sha, branch="main")  # type: ignore[union-attr]
    assert repo.file_text("README.md") == "mine\n"
    ghsim.conflict(times=1)
    with pytest.raises(GithubException) as injected:
        gh_repo.create_file("other.md", "m", "x", branch="main")
    assert injected.value.status == 409 and repo.file_text("other.md") is None


def test_secondary_rate_limit_is_retried_by_pygithub(ghsim, seeded):
    repo, pr = seeded
    fault = ghsim.secondary_rate_limit(retry_after=None, method="POST")
    gh = client(ghsim, retry=GithubRetry(total=3, backoff_factor=0, secondary_rate_wait=0.05))
    gh.get_repo(REPO).get_issue(pr.number).create_comment("patience")
    assert fault.hits == 1 and [c.body for c in repo.comments_on(pr.number)] == ["patience"]


def test_teams_membership_and_a_failing_lookup(ghsim, seeded):
    ghsim.set_team("octo-org", "rfc-committee", ["alice", "bob"], pending=["carol"])
    gh = client(ghsim)
    team = gh.get_organization("octo-org").get_team_by_slug("rfc-committee")
    assert [m.login for m in team.get_members()] == ["alice", "bob"]
    assert team.has_in_members(gh.get_user("alice"))
    assert not team.has_in_members(gh.get_user("carol"))
    assert team.get_team_membership("carol").state == "pending"
    membership = raw(ghsim, "GET", "/orgs/octo-org/teams/rfc-committee/memberships/bob")
    assert membership.json()["state"] == "active" and membership.json()["role"] == "member"
    assert raw(ghsim, "GET", "/orgs/octo-org/teams/rfc-committee/memberships/eve"
               ).status_code == 404
    ghsim.fail_team_lookup("octo-org", "rfc-committee")
    with pytest.raises(GithubException) as denied:
        list(gh.get_organization("octo-org").get_team_by_slug("rfc-committee").get_members())
    assert denied.value.status == 403
    org_id = ghsim.world.org("octo-org").id
    assert raw(ghsim, "GET", f"/organizations/{org_id}/team/{team.id}/members"
               ).status_code == 403


def test_collaborator_permission_and_search(ghsim, seeded):
    repo, pr = seeded
    repo.set_permission("alice", "maintain")
    other = repo.add_pull(title="Other", labels=["bug"])
    closed = repo.add_pull(title="Old RFC", labels=["rfc"], state="closed")
    gh = client(ghsim)
    gh_repo = gh.get_repo(REPO)
    assert gh_repo.get_collaborator_permission("alice") == "write"
    assert gh_repo.get_collaborator_permission("mallory") == "none"
    found = gh.search_issues(f"is:pr is:open label:rfc repo:{REPO}")
    assert [i.number for i in found] == [pr.number]
    assert found.totalCount == 1
    assert other.number not in [i.number for i in found] and closed.state == "closed"
    quoted = gh.search_issues(f'is:pr label:"rfc" repo:{REPO}')
    assert sorted(i.number for i in quoted) == sorted([pr.number, closed.number])


def test_issues_create_edit_and_list(ghsim, seeded):
    repo, _ = seeded
    gh_repo = client(ghsim).get_repo(REPO)
    issue = gh_repo.create_issue("Metrics alert", body="<!-- cvf:alert -->\nlead time",
                                 labels=["metrics"])
    assert issue.user.login == "cvf-governance[bot]"
    issue.edit(body="<!-- cvf:alert -->\nworse", state="closed")
    stored = repo.issue(issue.number)
    assert (stored.state, stored.body) == ("closed", "<!-- cvf:alert -->\nworse")
    mine = gh_repo.get_issues(state="all", creator="cvf-governance[bot]")
    assert [i.number for i in mine] == [issue.number]
    assert [i.number for i in gh_repo.get_issues(state="all", labels=["metrics"])] == [
        issue.number]


def test_workflow_runs_filtered_by_created(ghsim, seeded):
    repo, _ = seeded
    repo.add_workflow_run("CI", created_at=datetime(2024, 1, 10, tzinfo=UTC))
    late = repo.add_workflow_run("CI", conclusion="failure",
                                 created_at=datetime(2024, 3, 10, tzinfo=UTC))
    gh_repo = client(ghsim).get_repo(REPO)
    runs = gh_repo.get_workflow_runs(created=">=2024-02-01")
    assert [(r.id, r.conclusion) for r in runs] == [(late.id, "failure")]
    assert gh_repo.get_workflow_runs().totalCount == 2


def test_github_app_installation_token(ghsim, seeded):
    repo, pr = seeded
    ghsim.add_installation(42, "octo-org")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    auth = Auth.AppAuth(123, pem).get_installation_auth(42)
    gh = Github(base_url=ghsim.base_url, auth=auth, seconds_between_requests=0,
                seconds_between_writes=0)
    gh.get_repo(REPO).get_issue(pr.number).create_comment("from the app")
    assert repo.comments_on(pr.number)[-1].user == "cvf-governance[bot]"
    assert ghsim.count("POST", r"^/app/installations/42/access_tokens$") == 1
    ghsim.expire_tokens()
    token = next(iter(ghsim.world.grants))
    expired = requests.get(f"{ghsim.base_url}/repos/{REPO}",
                           headers={"Authorization": f"token {token}"}, timeout=10)
    assert expired.status_code == 401 and expired.json()["message"] == "Bad credentials"
    no_jwt = raw(ghsim, "POST", "/app/installations/42/access_tokens")
    assert no_jwt.status_code == 401
    assert raw(ghsim, "GET", "/app/installations").status_code == 401
    listed = requests.get(f"{ghsim.base_url}/installation/repositories",
                          headers={"Authorization": f"token {token}"}, timeout=10)
    assert listed.status_code == 401  # that token has expired
    assert raw(ghsim, "GET", "/installation/repositories").status_code == 403


def test_etag_gives_304_that_does_not_count(ghsim, seeded):
    first = raw(ghsim, "GET", f"/repos/{REPO}/pulls/1")
    etag = first.headers["ETag"]
    remaining = int(first.headers["X-RateLimit-Remaining"])
    second = raw(ghsim, "GET", f"/repos/{REPO}/pulls/1", headers={"If-None-Match": etag})
    assert second.status_code == 304 and second.content == b""
    assert int(second.headers["X-RateLimit-Remaining"]) == remaining
    seeded[0].add_comment(1, "dave", "changes the PR's comment count")
    third = raw(ghsim, "GET", f"/repos/{REPO}/pulls/1", headers={"If-None-Match": etag})
    assert third.status_code == 200 and third.headers["ETag"] != etag
    pulls = r"/pulls/1$"
    assert ghsim.count("GET", pulls) == 3 and ghsim.points(path=pulls) == 2
    assert [r.points for r in ghsim.requests if r.path.endswith("/pulls/1")] == [1, 0, 1]


def test_points_are_reported_per_client(ghsim, seeded):
    ghsim.set_token("t-alice", "alice")
    ghsim.set_token("t-bob", "bob")
    ghsim.reset_log()
    path = f"{ghsim.base_url}/repos/{REPO}/issues/1/comments"
    first = requests.get(path, headers={"Authorization": "token t-alice"}, timeout=10)
    requests.get(path, headers={"Authorization": "token t-alice",
                                "If-None-Match": first.headers["ETag"]}, timeout=10)
    requests.get(path, headers={"Authorization": "token t-bob"}, timeout=10)
    requests.get(path, headers={"Authorization": "token t-bob"}, timeout=10)
    assert ghsim.points_by_client() == {"alice": 1, "bob": 2}
    assert ghsim.points("alice") == 1 and ghsim.count() == 4


def test_primary_rate_limit_enforced(seeded):
    repo, _ = seeded
    with GitHubSimulator(world=repo.world, rate_limit=2, enforce_rate_limit=True) as sim:
        assert raw(sim, "GET", f"/repos/{REPO}").status_code == 200
        assert raw(sim, "GET", f"/repos/{REPO}").status_code == 200
        limited = raw(sim, "GET", f"/repos/{REPO}")
        assert limited.status_code == 403
        assert limited.json()["message"].startswith("API rate limit exceeded")
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        assert raw(sim, "GET", "/rate_limit").json()["resources"]["core"]["remaining"] == 0


def test_secondary_limit_on_writes_per_minute(seeded):
    repo, pr = seeded
    with GitHubSimulator(world=repo.world, writes_per_minute=3) as sim:
        path = f"/repos/{REPO}/issues/{pr.number}/comments"
        statuses = [raw(sim, "POST", path, json={"body": str(i)}).status_code for i in range(4)]
        assert statuses == [201, 201, 201, 403]
        limited = sim.requests[-1]
        assert limited.fault == "secondary_rate_limit" and len(repo.comments_on(pr.number)) == 3
        assert raw(sim, "GET", path).status_code == 200  # reads are not limited


def test_5xx_burst_is_retried_by_pygithub(ghsim, seeded):
    repo, pr = seeded
    fault = ghsim.fail(502, times=2, method="POST", path=r"/issues/\d+/comments$")
    client(ghsim).get_repo(REPO).get_issue(pr.number).create_comment("after the storm")
    assert fault.hits == 2
    assert [c.body for c in repo.comments_on(pr.number)] == ["after the storm"]
    assert [w.status for w in ghsim.writes("POST")] == [502, 502, 201]


def test_secondary_rate_limit_and_429_answers(ghsim, seeded):
    ghsim.secondary_rate_limit(retry_after=7, method="GET")
    limited = raw(ghsim, "GET", f"/repos/{REPO}")
    assert limited.status_code == 403 and limited.headers["Retry-After"] == "7"
    assert "secondary rate limit" in limited.json()["message"]
    ghsim.too_many_requests(retry_after=3)
    assert raw(ghsim, "GET", f"/repos/{REPO}").status_code == 429
    ghsim.primary_rate_limit(reset_in=120)
    primary = raw(ghsim, "GET", f"/repos/{REPO}")
    assert primary.status_code == 403 and primary.headers["X-RateLimit-Remaining"] == "0"
    assert raw(ghsim, "GET", f"/repos/{REPO}").status_code == 200


def test_slow_response_times_out_the_client(ghsim, seeded):
    ghsim.slow(0.6, path=r"/pulls/1$")
    with pytest.raises(requests.Timeout):
        requests.get(f"{ghsim.base_url}/repos/{REPO}/pulls/1", timeout=0.2)
    assert raw(ghsim, "GET", f"/repos/{REPO}/pulls/1").status_code == 200


@pytest.mark.parametrize("after_write", [False, True])
def test_dropped_connection_mid_write(ghsim, seeded, after_write):
    repo, pr = seeded
    ghsim.drop(after_write=after_write, method="POST")
    with pytest.raises(requests.ConnectionError):
        raw(ghsim, "POST", f"/repos/{REPO}/issues/{pr.number}/comments", json={"body": "hi"})
    assert len(repo.comments_on(pr.number)) == (1 if after_write else 0)
    assert [(w.status, w.fault) for w in ghsim.writes()] == [(None, "drop")]


def test_32_concurrent_clients(ghsim, seeded):
    repo, pr = seeded

    def work(n: int) -> int:
        session = requests.Session()
        headers = {"Authorization": "token t"}
        for i in range(5):
            session.get(f"{ghsim.base_url}/repos/{REPO}/pulls/{pr.number}", headers=headers,
                        timeout=10).raise_for_status()
            session.post(f"{ghsim.base_url}/repos/{REPO}/issues/{pr.number}/comments",
                         json={"body": f"{n}-{i}"}, headers=headers,
                         timeout=10).raise_for_status()
        return n

    with ThreadPoolExecutor(max_workers=32) as pool:
        assert sorted(pool.map(work, range(32))) == list(range(32))
    comments = repo.comments_on(pr.number)
    assert len(comments) == 160 and len({c.id for c in comments}) == 160
    assert ghsim.errors == []


def test_request_log_and_repository_id_paths(ghsim, seeded):
    repo, pr = seeded
    by_id = raw(ghsim, "GET", f"/repositories/{repo.id}/issues/{pr.number}")
    assert by_id.json()["number"] == pr.number
    raw(ghsim, "POST", f"/repos/{REPO}/issues/{pr.number}/labels", json=["x"])
    last = ghsim.requests[-1]
    assert (last.method, last.path, last.body, last.status, last.login) == (
        "POST", f"/repos/{REPO}/issues/{pr.number}/labels", ["x"], 200, "cvf-governance[bot]")
    bad = raw(ghsim, "POST", f"/repos/{REPO}/issues/{pr.number}/comments", data=b"{nope",
              headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert raw(ghsim, "GET", "/repos/octo-org/unknown").status_code == 404
    assert requests.post(f"{ghsim.base_url}/repos/{REPO}/issues/1/comments",
                         json={"body": "anon"}, timeout=10).status_code == 401
