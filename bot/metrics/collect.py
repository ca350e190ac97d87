"""Execution records from what GitHub already knows: workflow runs and pull request reviews.

Pure conversions from the port's dataclasses (or webhook payloads) to the record
contract. Ids are derived from GitHub's ids, so collecting twice, or receiving the
webhook and collecting later, stores each run or approval once.

- A completed workflow run is an execution: skill ``workflow:<name>``, agent the
  actor, success when it concluded success/neutral/skipped, latency its duration.
- A decided review on a pull request is an approval: requested when the pull request
  was opened, granted by the first approval (or rejected by the first change request
  before it), with the time to decide. Reviews carry ``latency_ms`` 0: a person's
  review is not an execution with a run time, and must not skew latency percentiles.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.github.port import PullRequest, Review, WorkflowRun

OK_CONCLUSIONS = ("success", "neutral", "skipped")


def run_record(run: WorkflowRun, *, risk_level: str = "R1") -> dict[str, Any] | None:
    """The execution record of a finished run; ``None`` while it is still running."""
    if run.status != "completed" or run.conclusion is None:
        return None
    ok = run.conclusion in OK_CONCLUSIONS
    seconds = max(0.0, (run.updated_at - run.created_at).total_seconds())
    return {
        "id": f"gh-run-{run.id}",
        "timestamp": _iso(run.updated_at),
        "skill": f"workflow:{run.name}",
        "agent": run.actor or "github-actions",
        "risk_level": risk_level,
        "decision": "auto_execute",
        "success": ok,
        "error_type": None if ok else run.conclusion,
        "latency_ms": round(seconds * 1000, 3),
        "approval": None,
        "audit": {"report_posted": True, "approval_recorded": False},
        "source": "github-actions",
        "github": {"run_id": run.id, "event": run.event, "head_sha": run.head_sha},
    }


def review_record(pull: PullRequest, reviews: list[Review], *,
                  risk_level: str = "R1") -> dict[str, Any] | None:
    """The approval record of a pull request, once a reviewer decided; ``None`` before."""
    decided = sorted((r for r in reviews if r.submitted_at is not None
                      and r.state in ("APPROVED", "CHANGES_REQUESTED")
                      and r.author != pull.author),
                     key=lambda r: (r.submitted_at, r.id))
    if not decided:
        return None
    approved = next((r for r in decided if r.state == "APPROVED"), None)
    deciding = approved or decided[0]
    assert deciding.submitted_at is not None
    requested = pull.created_at or deciding.submitted_at
    return {
        "id": f"gh-review-{pull.number}-{deciding.id}",
        "timestamp": _iso(deciding.submitted_at),
        "skill": "pull_request_review",
        "agent": pull.author,
        "risk_level": risk_level,
        "decision": "approval_required",
        "success": approved is not None,
        "error_type": None if approved else "changes_requested",
        "latency_ms": 0,
        "approval": {"required": True, "granted": approved is not None,
                     "rejected": approved is None, "approver": deciding.author,
                     "requested_at": _iso(requested), "decided_at": _iso(deciding.submitted_at)},
        "audit": {"report_posted": True, "approval_recorded": True},
        "source": "github-reviews",
        "github": {"pull": pull.number, "review_id": deciding.id},
    }


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
            actor=str((run.get("actor") or run.get("triggering_actor") or {}).get("login", "")))
    except (KeyError, TypeError, ValueError):
        return None


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
