"""The RFC index (``rfcs/README.md``): every RFC grouped by status and by type.

The page is a pure function of the RFC files (no clock, no GitHub), so ``--check`` can
compare it byte for byte in CI. Governance statistics plug in through ``stats``: any
object the optional ``templates/rfc/index-stats.md.j2`` knows how to show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from bot.rfc.document import STATUSES, RfcDocument, format_timestamp
from bot.templating import render

TEMPLATE = "rfc/index.md.j2"
STATUS_LABELS: dict[str, str] = {
    "draft": "Draft", "open_for_comment": "Open for comment", "review": "In review",
    "accepted": "Accepted", "rejected": "Rejected", "withdrawn": "Withdrawn",
    "postponed": "Postponed",
}


#: Computes the index's ``stats`` object from (documents, the config's rfc section).
StatsProvider = Callable[[Sequence[RfcDocument], Mapping[str, Any]], Any]
_stats_provider: list[StatsProvider] = []


def provide_stats(provider: StatsProvider | None) -> None:
    """Let another module (RFC governance) add its statistics to every rendered index.

    Called from that module's ``register(cli)``; ``None`` removes it again. The index
    stays a pure function of the files as long as the provider is one too.
    """
    _stats_provider.clear()
    if provider is not None:
        _stats_provider.append(provider)


def index_stats(docs: Sequence[RfcDocument], rfc_config: Mapping[str, Any]) -> Any:
    """The registered provider's stats for these documents, or ``None`` without one."""
    return _stats_provider[0](docs, rfc_config) if _stats_provider else None


@dataclass(frozen=True)
class IndexEntry:
    number: int
    code: str
    title: str
    type: str
    status: str
    status_label: str
    link: str
    authors: str
    created: str
    comment_period_ends: str
    decided: str


def entry(doc: RfcDocument) -> IndexEntry:
    number = doc.number if doc.number is not None else 0
    status = doc.status or "draft"
    ends = doc.comment_period_ends
    decision = doc.decision
    return IndexEntry(
        number=number, code=f"{number:04d}", title=doc.title, type=doc.type or "",
        status=status, status_label=STATUS_LABELS.get(status, status),
        link=PurePosixPath(doc.path).name, authors=", ".join(doc.authors),
        created=doc.created.isoformat() if doc.created else "",
        comment_period_ends=format_timestamp(ends).replace("T", " ").replace(":00Z", "")
        if ends else "",
        decided=decision.date.isoformat() if decision and decision.date else "",
    )


TEMPLATE_FILE = "0000-template.md"


def render_index(docs: Sequence[RfcDocument], *, types: Sequence[str],
                 directory: str = "rfcs", stats: Any = None,
                 template: str | None = None) -> str:
    """The index page; ``types`` fixes the order of the by-type groups (config order).

    ``template`` is the RFC template's file name when the folder has one: the page links
    only files the repository really holds, and names no project but "this project"."""
    entries = sorted((entry(d) for d in docs), key=lambda e: (e.number, e.link))
    by_status = []
    for status in STATUSES:
        group = [e for e in entries if e.status == status]
        if group:
            by_status.append({"status": status, "label": STATUS_LABELS[status],
                              "count": len(group), "rfcs": group})
    type_order = list(types) + sorted({e.type for e in entries} - set(types))
    by_type = [{"type": t, "rfcs": [e for e in entries if e.type == t]}
               for t in type_order if any(e.type == t for e in entries)]
    return render(TEMPLATE, rfcs=entries, by_status=by_status, by_type=by_type,
                  directory=directory, stats=stats, template=template)
