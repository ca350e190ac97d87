"""Metrics on GitHub: record decisions, approvals and executions; raise and clear alerts.

- Every pull request event the routing gate evaluates: its decision and the approvals
  requested, granted or rejected (the routing handler's ``routing-records`` output:
  ``bot.metrics.facts``), each stored once however often it is delivered.
- ``workflow_run`` completed on a head the gate decided on: an execution of the agent
  the router chose (``bot.metrics.collect.run_record``).
- The tick evaluates alerts: one issue per alert key, opened or updated while it fires
  and closed when it clears; a skill burning its error budget also gets a draft
  ``policy_change`` RFC proposing a higher risk level.

The store is the SQLite file named by ``metrics.store`` under the repository root. In
an Action, ``sync_pull``/``sync_push`` keep it on a data branch between runs
(one ``<directory>/YYYY-MM-DD.jsonl`` per day).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bot.handlers.routing  # registers first, so its decision is ready for ours
from bot.config import Config
from bot.durations import shown_time
from bot.events import Event, router
from bot.github.port import GitHubPort
from bot.metrics.aggregate import agent_health_feed
from bot.metrics.alerts import Alert, RiskRaise, evaluate, risk_raises
from bot.metrics.collect import latest_decision, review_records, run_from_payload, run_record
from bot.metrics.store import IngestResult, MetricsStore, open_store
from bot.templating import render

ALERT_MARKER = "<!-- cvf:metrics-alert:{key} -->"
RFC_MARKER = "<!-- cvf:metrics-rfc:{skill} -->"
PUSHED_SEQ = "sync.pushed_seq"
METRICS_DSN_ENV = "CVF_METRICS_DSN"


def store_path(config: Config) -> Path:
    """Where ``metrics.store`` points: relative paths are under the repository root."""
    path = Path(str(config.section("metrics")["store"]))
    return path if path.is_absolute() else Path(config.root) / path


def store_dsn(config: Config) -> str | None:
    """The PostgreSQL store's DSN: ``CVF_METRICS_DSN``, or ``metrics.store`` when it is
    a ``postgresql://`` DSN; None for the SQLite file (the default)."""
    from bot.pg import is_dsn

    dsn = os.environ.get(METRICS_DSN_ENV) or str(config.section("metrics")["store"])
    return dsn if is_dsn(dsn) else None


def store_for(config: Config) -> MetricsStore:
    """The store named by ``CVF_METRICS_DSN`` or ``metrics.store`` (created on first use)."""
    dsn = store_dsn(config)
    return open_store(dsn if dsn else store_path(config))


def store_health(config: Config, now: datetime | None = None) -> dict[str, float]:
    """Agents' error rates (0..1) over the last hour, from the store when it exists.

    This is how measurements reach the router: the routing gate and ``cvf route`` rank an
    agent above ``routing.health_bound`` after the healthy ones, and say so.
    """
    if store_dsn(config) is None and not store_path(config).is_file():
        return {}
    bound = float(config.section("routing").get("health_bound", 0.2))
    store = store_for(config)
    try:
        feed = agent_health_feed(store, now=now or datetime.now(UTC),
                                 unhealthy_error_rate=bound * 100)
    finally:
        store.close()
    return {agent: health.error_rate / 100 for agent, health in feed.items()
            if health.error_rate is not None}


bot.handlers.routing.set_health_source(store_health)


# -- events -------------------------------------------------------------------------
@router.register("workflow_run", "completed")
def on_workflow_run(event: Event, port: GitHubPort) -> None:
    run = run_from_payload(event.payload)
    if run is None or not run.head_sha:
        return
    store = store_for(event.config)
    try:
        record = run_record(run, latest_decision(store.facts_about(run.head_sha)))
        if record is not None:
            store.add_many([record], default_source="github-actions")
    finally:
        store.close()


@router.register("pull_request_review", "submitted", "dismissed", "edited")
def on_review(event: Event, port: GitHubPort) -> None:
    # The gate re-evaluated on this review: what it granted or rejected is in its records.
    _store(event.config, _routing_records(event), "cvf-routing")


@router.register("pull_request", "opened", "synchronize", "reopened", "labeled", "unlabeled",
                 "ready_for_review")
def on_pull_request(event: Event, port: GitHubPort) -> None:
    _store(event.config, _routing_records(event), "cvf-routing")


@router.register("issue_comment", "created")
def on_comment(event: Event, port: GitHubPort) -> None:
    _store(event.config, _routing_records(event), "cvf-routing")


def _routing_records(event: Event) -> list[dict[str, Any]]:
    """The routing handler's decision and approvals for this event, if it evaluated the
    pull request (it runs first)."""
    text = event.outputs.get("routing-records") or event.outputs.get("routing-record")
    if not text:
        return []
    try:
        records = json.loads(text)
    except json.JSONDecodeError:
        return []
    if isinstance(records, dict):
        records = [records]
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def _store(config: Config, records: list[dict[str, Any]], source: str) -> None:
    if not records:
        return
    store = store_for(config)
    try:
        store.add_many(records, default_source=source)
    finally:
        store.close()


def _collect(config: Config) -> dict[str, Any]:
    return dict(config.section("metrics")["collect"])


# -- collecting from GitHub ---------------------------------------------------------
def collect(port: GitHubPort, store: MetricsStore, config: Config, *, since: datetime,
            pulls: Iterable[int] = ()) -> tuple[IngestResult, int, int]:
    """Store the finished workflow runs since ``since`` of heads the routing gate decided
    on (executions of the chosen agents), and the reviews of ``pulls`` plus labelled PRs
    (approvals).

    Returns the ingest result and how many runs and pull requests were read.
    """
    settings = _collect(config)
    runs = port.list_workflow_runs(since)
    records = []
    for run in runs:
        record = run_record(run, latest_decision(store.facts_about(run.head_sha))
                            if run.head_sha else None)
        if record is not None:
            records.append(record)
    numbers = dict.fromkeys(pulls)
    for label in settings["review_labels"]:
        numbers.update(dict.fromkeys(port.search_open_pulls(label)))
    for number in numbers:
        records += review_records(port.repo, port.get_pull(number), port.list_reviews(number),
                                  risk_level=settings["risk_level"])
    return store.add_many(records, default_source="github"), len(runs), len(numbers)


# -- alerts -------------------------------------------------------------------------
COLLECTED_UNTIL = "tick.collected_until"


@router.tick
def metrics_tick(port: GitHubPort, config: Config, now: datetime) -> None:
    """Collect what GitHub recorded since the last tick (workflow runs, reviews of the
    labelled pull requests), then open, update and close the alert issues."""
    settings = config.section("metrics")
    store = store_for(config)
    try:
        last = store.get_meta(COLLECTED_UNTIL)
        since = datetime.fromisoformat(last) if last else now - timedelta(days=1)
        collect(port, store, config, since=min(since, now))
        store.set_meta(COLLECTED_UNTIL, now.isoformat())
        if settings["alerts"]["enabled"]:
            publish_alerts(port, store, config, evaluate(store, settings, now), now)
    finally:
        store.close()


def publish_alerts(port: GitHubPort, store: MetricsStore, config: Config,
                   alerts: list[Alert], now: datetime) -> dict[str, list[str]]:
    """Open/update an issue per firing alert, close those that cleared; say what was done."""
    settings = config.section("metrics")
    labels = list(settings["alerts"]["labels"])
    stamp = shown_time(now)
    # A dry run shows the GitHub writes and changes nothing, the store included.
    remember = not getattr(port, "dry_run", False)
    done: dict[str, list[str]] = {"firing": [], "closed": [], "proposed": []}
    firing = {a.key for a in alerts}
    for alert in alerts:
        marker = ALERT_MARKER.format(key=_slug(alert.key))
        body = render("metrics/alert-issue.md.j2", marker=marker, alert=alert, now=stamp)
        issue = port.open_or_update_issue(marker, f"Metrics alert: {_stable_title(alert)}",
                                          body, labels)
        if remember:
            store.remember_alert_issue(alert.key, issue.number)
        done["firing"].append(alert.key)
    for key in sorted(set(store.alert_issues()) - firing):
        found = port.find_issue(ALERT_MARKER.format(key=_slug(key)))
        if found is not None and found.state == "open":
            port.close_issue(found.number, render("metrics/alert-cleared.md.j2", key=key,
                                                  now=stamp))
            done["closed"].append(key)
        if remember:
            store.forget_alert_issue(key)
    if settings["alerts"]["propose_risk_raise"]:
        for raise_ in risk_raises(store, alerts, now):
            propose_risk_raise(port, config, raise_, now)
            done["proposed"].append(raise_.skill)
    return done


def propose_risk_raise(port: GitHubPort, config: Config, proposal: RiskRaise,
                       now: datetime) -> int:
    """A draft policy_change RFC (as an issue) to raise a skill's risk level, with evidence."""
    marker = RFC_MARKER.format(skill=_slug(proposal.skill))
    body = render("metrics/risk-raise-rfc.md.j2", marker=marker, skill=proposal.skill,
                  slug=_slug(proposal.skill), current=proposal.current,
                  proposed=proposal.proposed, alert=proposal.alert,
                  directory=config.section("rfc")["directory"],
                  now=now.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                  today=now.astimezone(UTC).date().isoformat())
    title = (f"RFC draft (policy_change): raise skill {proposal.skill} from "
             f"{proposal.current} to {proposal.proposed}")
    labels = [*config.section("metrics")["alerts"]["labels"], "rfc: proposal"]
    return port.open_or_update_issue(marker, title, body, labels).number


def _stable_title(alert: Alert) -> str:
    # Numbers change every tick; the title must not, or each tick rewrites it.
    subject = {"error_budget": f"error budget burning ({alert.skill or 'all skills'})",
               "latency": "latency anomaly", "overload": f"agent {alert.agent} overloaded",
               "silent": f"agent {alert.agent} silent"}
    return subject.get(alert.kind, alert.key)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.:-]+", "-", text).strip("-")[:80]


# -- keeping the store between Action runs ------------------------------------------
def sync_pull(port: GitHubPort, store: MetricsStore, config: Config,
              now: datetime) -> IngestResult:
    """Load the last ``persistence.days`` daily files from the data branch (idempotent)."""
    cfg = config.section("metrics")["persistence"]
    added = duplicates = 0
    today = now.astimezone(UTC).date()
    for offset in range(int(cfg["days"]) - 1, -1, -1):
        path = f"{cfg['directory']}/{(today - timedelta(days=offset)).isoformat()}.jsonl"
        found = port.get_file(path, ref=cfg["branch"])
        if found is None:
            continue
        result = store.ingest_lines(found.text.splitlines(), where=f"{cfg['branch']}:{path}")
        added, duplicates = added + result.added, duplicates + result.duplicates
    found = port.get_file(_alerts_path(config), ref=cfg["branch"])
    for key, number in (_alert_memory(found.text) if found is not None else {}).items():
        if key not in store.alert_issues():
            store.remember_alert_issue(key, number)
    return IngestResult(added=added, duplicates=duplicates)


def _alerts_path(config: Config) -> str:
    """The open alert issues, kept beside the records so a fresh runner can close them."""
    return f"{config.section('metrics')['persistence']['directory']}/alert-issues.json"


def _alert_memory(text: str) -> dict[str, int]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int)}


def push_alert_memory(port: GitHubPort, store: MetricsStore, config: Config) -> None:
    """Write the open alert issues to the data branch when they changed."""
    wanted = json.dumps(dict(sorted(store.alert_issues().items())), indent=1) + "\n"

    def change(current: str | None) -> str | None:
        if current is not None and _alert_memory(current) == store.alert_issues():
            return None
        if current is None and not store.alert_issues():
            return None
        return wanted

    port.update_file(_alerts_path(config), config.section("metrics")["persistence"]["branch"],
                     change, "metrics: open alert issues")


def sync_push(port: GitHubPort, store: MetricsStore, config: Config, *,
              remember: bool = True) -> dict[str, int]:
    """Append records stored since the last push to their day's file on the data branch.

    Returns ``{path: records added}``. Files are merged by id, so a push after a failed
    push, or from two runs at once, never duplicates a record.
    """
    cfg = config.section("metrics")["persistence"]
    since = int(store.get_meta(PUSHED_SEQ) or 0)
    by_day: dict[str, list[tuple[str, str]]] = defaultdict(list)
    last = since
    for seq, ts, body in store.bodies_after(since):
        day = datetime.fromtimestamp(ts, UTC).date().isoformat()
        by_day[day].append((json.loads(body)["id"], body))
        last = seq
    written: dict[str, int] = {}
    for day, items in sorted(by_day.items()):
        path = f"{cfg['directory']}/{day}.jsonl"
        added = {"count": 0}

        def merge(current: str | None, items: list[tuple[str, str]] = items,
                  added: dict[str, int] = added) -> str | None:
            lines = (current or "").splitlines()
            known = {_id_of(line) for line in lines}
            new = [body for rid, body in items if rid not in known]
            added["count"] = len(new)
            if not new:
                return None
            return "\n".join([*[ln for ln in lines if ln.strip()], *new]) + "\n"

        port.update_file(path, cfg["branch"], merge,
                         f"metrics: {len(items)} execution records for {day}")
        written[path] = added["count"]
    if remember:
        store.set_meta(PUSHED_SEQ, str(last))
    return written


def _id_of(line: str) -> str | None:
    try:
        value = json.loads(line).get("id")
    except (json.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None
