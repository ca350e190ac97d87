"""Rollup buckets: how a bucket's numbers are grouped, packed into a row and read back.

Why this shape: every bucket (one minute, hour or day) is one row whose five columns
each hold a packed table of ``(key, values)`` entries: counts by risk and decision, by
agent, by skill and risk, and two histograms (latency in ms, time to approve in s)
with 1%-wide log bins. Grouping, merging and reading are done by numpy over whole
chunks and whole windows, so the Python work per chunk or per report is a fixed
number of calls: ingest writes about one row per bucket touched rather than several
rows per record, and a report costs the same per bucket whether a bucket holds two
records or two thousand. Any percentile is read back within 0.5% of its true value
(a bin's geometric middle is within half a bin width of every value in it), and
exactly at a bin's edges: each bin keeps its smallest and largest value, so the first
and last rank in a bin (and any rank in a bin whose values are all equal, as when
every execution hits the same timeout) read the true value.

Agents and skills are stored as small integer ids (the store's ``dims`` table), so
entries are fixed-width and a bucket never repeats a name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.metrics.record import DECISIONS, RISK_INDEX, RISK_LEVELS

HIST_RATIO = 1.01  # bin width; the bin's geometric middle is within 0.5% of any value in it
_INV_LOG_RATIO = 1.0 / math.log(HIST_RATIO)
# Values below 1 µs (or exactly 0): just under the lowest real bin (log(1e-3)/log(1.01) is
# about -694), so bins stay a short run of integers that sum by counting, not sorting.
ZERO_BIN = -700

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Section:
    """One packed column: entries of an int64 key and ``width`` float64 values.

    Values are summed when buckets merge, except the columns in ``max_cols`` (a latest
    timestamp, a bin's largest value), which keep the largest, and those in
    ``min_cols``, which keep the smallest. Counts are exact in float64 up to 2**53.
    """

    name: str
    width: int
    max_cols: tuple[int, ...] = ()
    min_cols: tuple[int, ...] = ()

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype([("key", "<i8"), ("vals", "<f8", (self.width,))])


# main: key risk*4+decision; n, ok, latency sum, audit complete, approval needed/granted/rejected
MAIN = Section("main", 7)
# agents: key agent id; n, errors, latency sum, last execution (epoch s)
AGENTS = Section("agents", 4, max_cols=(3,))
# skills: key skill id*4+risk; n, errors, latency sum
SKILLS = Section("skills", 3)
# histograms: key bin; count, smallest and largest value in the bin
LATENCY = Section("latency", 3, max_cols=(2,), min_cols=(1,))  # bins of latency_ms
APPROVAL = Section("approval", 3, max_cols=(2,), min_cols=(1,))  # seconds to grant
SECTIONS: tuple[Section, ...] = (MAIN, AGENTS, SKILLS, LATENCY, APPROVAL)


@dataclass(frozen=True)
class Table:
    """Entries of one section sorted by ``(bucket, key)``, at most one per pair."""

    bucket: Ints
    key: Ints
    vals: Floats

    def __len__(self) -> int:
        return len(self.key)


def empty(section: Section) -> Table:
    return Table(np.empty(0, np.int64), np.empty(0, np.int64),
                 np.empty((0, section.width), np.float64))


def bins_of(values: Floats) -> Ints:
    """Histogram bin of each value (``ZERO_BIN`` below 1 µs)."""
    safe = np.maximum(values, 1e-3)
    bins = np.floor(np.log(safe) * _INV_LOG_RATIO).astype(np.int64)
    return np.where(values >= 1e-3, bins, ZERO_BIN)


def bin_value(index: int) -> float:
    return 0.0 if index == ZERO_BIN else float(HIST_RATIO ** (index + 0.5))


def group(section: Section, bucket: Ints, key: Ints, vals: Floats) -> Table:
    """Merge entries with the same ``(bucket, key)``: sums, or maxima for ``max_cols``."""
    if len(key) == 0:
        return empty(section)
    order = np.lexsort((key, bucket))
    bucket, key, vals = bucket[order], key[order], vals[order]
    change = np.empty(len(key), dtype=bool)
    change[0] = True
    np.not_equal(bucket[1:], bucket[:-1], out=change[1:])
    change[1:] |= key[1:] != key[:-1]
    starts = np.flatnonzero(change)
    sums = np.add.reduceat(vals, starts, axis=0)
    for col in section.max_cols:
        sums[:, col] = np.maximum.reduceat(vals[:, col], starts)
    for col in section.min_cols:
        sums[:, col] = np.minimum.reduceat(vals[:, col], starts)
    return Table(bucket[starts], key[starts], sums)


def coarsen(section: Section, table: Table, res: int) -> Table:
    """The same entries in buckets ``res`` seconds long."""
    return group(section, table.bucket // res * res, table.key, table.vals)


def merge(section: Section, tables: Sequence[Table]) -> Table:
    tables = [t for t in tables if len(t)]
    if not tables:
        return empty(section)
    if len(tables) == 1:
        return tables[0]
    return group(section, np.concatenate([t.bucket for t in tables]),
                 np.concatenate([t.key for t in tables]),
                 np.concatenate([t.vals for t in tables]))


def encode(section: Section, table: Table, buckets: Ints) -> tuple[bytes, Ints, Ints]:
    """A section's entries packed little-endian, and where each bucket's part of them
    starts (1-based, as SQLite's ``substr`` counts) and how many bytes it has."""
    packed = np.empty(len(table), dtype=section.dtype)
    packed["key"] = table.key
    packed["vals"] = table.vals
    size = section.dtype.itemsize
    lo = np.searchsorted(table.bucket, buckets, "left")
    hi = np.searchsorted(table.bucket, buckets, "right")
    return packed.tobytes(), lo * size + 1, (hi - lo) * size


def decode(section: Section, blobs: Sequence[bytes], buckets: Sequence[int]) -> Table:
    """The entries of stored blobs (one per bucket), in bucket order."""
    if not blobs:
        return empty(section)
    packed = np.frombuffer(b"".join(blobs), dtype=section.dtype)
    counts = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    return Table(np.repeat(np.asarray(buckets, dtype=np.int64), counts // section.dtype.itemsize),
                 packed["key"], packed["vals"])


@dataclass(frozen=True)
class Columns:
    """One chunk of records as arrays: what every section is computed from."""

    minute: Ints
    ts: Floats
    risk: Ints
    decision: Ints
    agent: Ints
    skill: Ints
    ok: Floats
    latency: Floats
    audit_ok: Floats
    needed: Floats
    granted: Floats
    rejected: Floats
    approve_seconds: Floats  # NaN where no time to approve is known

    def tables(self) -> dict[Section, Table]:
        """Minute buckets of every section."""
        n = len(self.ts)
        ones = np.ones(n)
        err = 1.0 - self.ok
        timed = ~np.isnan(self.approve_seconds)
        return {
            MAIN: group(MAIN, self.minute, self.risk * 4 + self.decision, np.column_stack(
                (ones, self.ok, self.latency, self.audit_ok, self.needed, self.granted,
                 self.rejected))),
            AGENTS: group(AGENTS, self.minute, self.agent,
                          np.column_stack((ones, err, self.latency, self.ts))),
            SKILLS: group(SKILLS, self.minute, self.skill * 4 + self.risk,
                          np.column_stack((ones, err, self.latency))),
            LATENCY: group(LATENCY, self.minute, bins_of(self.latency),
                           np.column_stack((ones, self.latency, self.latency))),
            APPROVAL: group(APPROVAL, self.minute[timed], bins_of(self.approve_seconds[timed]),
                            np.column_stack((ones[timed], self.approve_seconds[timed],
                                             self.approve_seconds[timed]))),
        }


class Rollup:
    """The merged buckets of a window, and the totals reports ask of them."""

    def __init__(self, tables: dict[Section, Table], name_of: Callable[[int], str]):
        self.tables = tables
        self.name_of = name_of

    def main(self) -> list[tuple[str, str, int, int, float, int, int, int, int]]:
        """``(risk, decision, n, ok, latency sum, audit ok, needed, granted, rejected)``."""
        out = []
        for key, row in zip(*_sum_by_key(MAIN, self.tables[MAIN]), strict=True):
            n, ok, lat, audit, needed, granted, rejected = row
            out.append((RISK_LEVELS[key // 4], DECISIONS[key % 4], int(n), int(ok), lat,
                        int(audit), int(needed), int(granted), int(rejected)))
        return out

    def agents(self) -> dict[str, tuple[int, int, float, float]]:
        """``{agent: (n, errors, latency sum, last execution epoch s)}``."""
        return {self.name_of(key): (int(n), int(err), lat, last)
                for key, (n, err, lat, last) in zip(*_sum_by_key(AGENTS, self.tables[AGENTS]),
                                                    strict=True)}

    def skills(self) -> dict[tuple[str, str], tuple[int, int, float]]:
        """``{(skill, risk): (n, errors, latency sum)}``."""
        return {(self.name_of(key // 4), RISK_LEVELS[key % 4]): (int(n), int(err), lat)
                for key, (n, err, lat) in zip(*_sum_by_key(SKILLS, self.tables[SKILLS]),
                                              strict=True)}

    def percentiles(self, section: Section, ps: Sequence[float],
                    extra: Sequence[float] = ()) -> list[float | None]:
        """Nearest-rank percentiles of a histogram section and ``extra`` values (``None``
        when both are empty)."""
        table = self.tables[section]
        if extra:
            values = np.asarray(extra, dtype=np.float64)
            table = merge(section, [table, Table(
                np.zeros(len(values), np.int64), bins_of(values),
                np.column_stack((np.ones(len(values)), values, values)))])
        bins, sums = _dense_sums(section, table)
        return percentiles(bins, sums[:, 0], ps, lows=sums[:, 1], highs=sums[:, 2])

    def series(self, step: int, first: int, count: int) -> dict[str, list[float]]:
        """Per step from ``first``: executions, errors, latency sum, high-risk executions."""
        table = self.tables[MAIN]
        slot = (table.bucket - first) // step
        inside = (slot >= 0) & (slot < count)
        slot, keys, vals = slot[inside], table.key[inside], table.vals[inside]
        high = (keys // 4) >= RISK_INDEX["R2"]

        def per_slot(weights: Floats) -> list[float]:
            sums: list[float] = np.bincount(slot, weights=weights, minlength=count).tolist()
            return sums

        return {"n": per_slot(vals[:, 0]), "errors": per_slot(vals[:, 0] - vals[:, 1]),
                "latency": per_slot(vals[:, 2]), "high_n": per_slot(vals[:, 0] * high)}


def percentiles(bins: Ints, counts: Floats, ps: Sequence[float], *,
                lows: Floats | None = None, highs: Floats | None = None
                ) -> list[float | None]:
    """Nearest-rank percentiles from sorted bins and their counts.

    With each bin's smallest and largest value (``lows``, ``highs``), a rank that is a
    bin's first or last reads that value exactly, and a rank inside reads the bin's
    middle kept within them."""
    total = float(counts.sum()) if len(counts) else 0.0
    if total <= 0:
        return [None for _ in ps]
    running = np.cumsum(counts)
    out: list[float | None] = []
    for p in ps:
        rank = max(1, math.ceil(p / 100.0 * total))
        at = min(int(np.searchsorted(running, rank - 0.5)), len(bins) - 1)
        value = bin_value(int(bins[at]))
        if lows is not None and highs is not None:
            low, high = float(lows[at]), float(highs[at])
            before = float(running[at - 1]) if at else 0.0
            if rank - before <= 1:
                value = low
            elif rank >= float(running[at]):
                value = high
            else:
                value = min(max(value, low), high)
        out.append(value)
    return out


def _sum_by_key(section: Section, table: Table) -> tuple[list[int], list[list[float]]]:
    """Distinct keys (ascending) and their merged values, as plain Python lists."""
    keys, sums = _dense_sums(section, table)
    return keys.tolist(), sums.tolist()


def _dense_sums(section: Section, table: Table) -> tuple[Ints, Floats]:
    """Distinct keys (ascending) and their merged values.

    Keys are short runs of small integers (ids, bins), so merging counts into a dense
    array beats sorting: the cost is one pass over the entries whatever their order."""
    if not len(table):
        return np.empty(0, np.int64), np.empty((0, section.width))
    low = int(table.key.min())
    index = table.key - low
    size = int(index.max()) + 1
    if size > 4 * len(table) + 4096:  # scattered keys: sort them instead
        keys, index = np.unique(table.key, return_inverse=True)
        size, low = len(keys), 0
    else:
        keys = None
    sums = np.empty((size, section.width))
    for col in range(section.width):
        if col in section.max_cols:
            sums[:, col] = -np.inf if section.min_cols else 0.0
            np.maximum.at(sums[:, col], index, table.vals[:, col])
        elif col in section.min_cols:
            sums[:, col] = np.inf
            np.minimum.at(sums[:, col], index, table.vals[:, col])
        else:
            sums[:, col] = np.bincount(index, weights=table.vals[:, col], minlength=size)
    present = np.bincount(index, minlength=size) > 0
    found = np.flatnonzero(present)
    return (keys[found] if keys is not None else found + low), sums[found]
