"""Records from what GitHub already knows: workflow runs and pull request reviews.

Pure conversions from the port's dataclasses (or webhook payloads) to the record
contracts (``bot.metrics.facts``). Ids are derived from GitHub's ids, so collecting
twice, or receiving the webhook and collecting later, stores each run or review once.

- A completed workflow run of a pull request head the routing gate decided on is an
  **execution** of the agent the router chose for it: skill and risk from the
  decision, success when the run concluded success/neutral/skipped, latency the run's
  duration. GitHub knows the outcome; it does not know an agent for other runs (the
  actor is a person who pushed), so those are not executions of any agent and are
  left out. A cancelled run has no outcome and is left out too.
- A decided review is an **approval** granted or rejected by the reviewer (each
  reviewer's latest stance, never the author's), with the time from opening to the
  decision. Its id is the one the routing gate gives the same approval on the same
  head, so the two channels never count one approval twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.github.port import PullRequest, Review, WorkflowRun
from bot.metrics.facts import approval_record

OK_CONCLUSIONS = ("success", "neutral", "skipped")
NO_OUTCOME = ("cancelled", "stale")


def run_record(run: WorkflowRun, decision: dict[str, Any] | None) -> dict[str, Any] | None:
    """The execution record of a finished run of a routed head, by the chosen agent;
    ``None`` while it runs, without an outcome, or when no agent was chosen for it."""
    if run.status != "completed" or run.conclusion is None or run.conclusion in NO_OUTCOME:
        return None
    if decision is None or not decision.get("agent"):
        return None
    ok = run.conclusion in OK_CONCLUSIONS
    seconds = max(0.0, (run.updated_at - run.created_at).total_seconds())
    return {
        "id": f"gh-run-{run.id}",
        "timestamp": _iso(run.updated_at),
        "skill": decision["skill"],
        "agent": decision["agent"],
        "risk_level": decision["risk_level"],
        "decision": decision["decision"],
        "success": ok,
        "error_type": None if ok else f"workflow_{run.conclusion}",
        "latency_ms": round(seconds * 1000, 3),
        "approval": None,
        "audit": {"report_posted": True, "approval_recorded": False},
        "source": "github-actions",
        "url": run.url or None,
        "repository": decision.get("repository"),
        "pull_request": decision.get("pull_request"),
        "github": {"run_id": run.id, "workflow": run.name, "event": run.event,
                   "head_sha": run.head_sha},
    }


def latest_decision(facts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest decision among a head's records (a label may change it)."""
    decisions = [f for f in facts if f.get("kind") == "decision"]
    return max(decisions, key=lambda d: str(d.get("timestamp")), default=None)


def review_records(repo: str, pull: PullRequest, reviews: list[Review], *,
                   risk_level: str | None = None) -> list[dict[str, Any]]:
    """The approvals granted or rejected by each reviewer's latest decided review."""
    latest: dict[str, Review] = {}
    for review in sorted(reviews, key=lambda r: (r.submitted_at is None, r.submitted_at, r.id)):
        if review.submitted_at is None or review.author.lower() == pull.author.lower():
            continue
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.author.lower()] = review
    out = []
    for review in latest.values():
        if review.state == "DISMISSED":
            continue
        assert review.submitted_at is not None
        out.append(approval_record(
            state="granted" if review.state == "APPROVED" else "rejected", repo=repo,
            number=pull.number, head_sha=review.commit_id or None, url=pull.html_url or None,
            by=review.author, role=None, requested_at=pull.created_at,
            decided_at=review.submitted_at, timestamp=review.submitted_at,
            risk_level=risk_level, source="github-reviews"))
    return out


def run_from_payload(payload: dict[str, Any]) -> WorkflowRun | None:
    """The ``workflow_run`` webhook's run as the port's dataclass."""
    run = payload.get("workflow_run") or {}
    try:
        updated = _parse(run["updated_at"])
        started = _parse(run.get("run_started_at") or run["created_at"])
        if started >= updated:  # a re-run's start, or no start recorded: use creation
            started = _parse(run["created_at"])
        return WorkflowRun(
            id=int(run["id"]), name=str(run.get("name") or "workflow"),
            conclusion=run.get("conclusion"), status=str(run.get("status") or ""),
            created_at=started, updated_at=updated, head_sha=str(run.get("head_sha") or ""),
            event=str(run.get("event") or ""),
            actor=str((run.get("actor") or run.get("triggering_actor") or {}).get("login", "")),
            url=str(run.get("html_url") or ""))
    except (KeyError, TypeError, ValueError):
        return None


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
