"""Turning JSONL lines into checked columns, in worker processes when the input is big.

Why processes: decoding and checking a record is pure Python (about 3-4 µs), and so is
much of storing it, so two threads only take turns on the GIL. A big import instead
hands chunks of lines to worker processes, which parse them while this process writes
the chunks already parsed; small inputs (an API request, a short file) never pay for
starting a worker. Chunks come back in input order, so line numbers in errors and the
order records are stored in are the same either way.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
import pickle
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import orjson

from bot.jsonlimits import TooDeep, check_depth
from bot.metrics.facts import check_fact, kind_of
from bot.metrics.record import MAX_PROBLEMS, RecordError, content_id, measure

CHUNK = 20_000  # lines per chunk: big enough to amortise numpy calls, small enough to stream
CHUNK_BYTES = 8 << 20  # and at most this much text per chunk, however long the lines
MAX_LINE = 1 << 20  # bytes in one JSONL line (a record is ~300 bytes): longer is refused
MAX_WORKERS = 3  # beyond this the writing process is the bottleneck


@dataclass
class Parsed:
    """One chunk of input: its valid records as columns, or its problems.

    ``numbers`` rows are the numeric part of ``bot.metrics.record.Measures`` in order
    (timestamp, risk, decision, success, latency, audit, needed, granted, rejected,
    seconds to approve); column ``i`` belongs to ``ids[i]``. ``facts`` are the chunk's
    decisions and approvals (``bot.metrics.facts``), which no rollup counts:
    ``(id, kind, epoch seconds, head sha or None, JSON text)``."""

    ids: list[str]
    texts: list[str]
    agents: list[str]
    skills: list[str]
    numbers: npt.NDArray[np.float64]
    duplicates: int  # ids seen twice within the chunk (the store finds the others)
    problems: list[str]
    facts: list[tuple[str, int, float, str | None, str]] = field(default_factory=list)
    # The records ready for a store's bulk load, one line per record in ``ids`` order,
    # when the caller asked ``parsed_chunks`` to ``prepare`` them (made by the parser
    # process, so the writing process only sends bytes); ``texts`` may then be empty.
    rows: bytes = b""

    def __len__(self) -> int:
        return len(self.ids)

    def keep(self, wanted: list[bool]) -> Parsed:
        """Only the records where ``wanted`` is true."""
        pick = [i for i, w in enumerate(wanted) if w]
        rows = b""
        if self.rows:
            lines = self.rows.splitlines(keepends=True)
            rows = b"".join(lines[i] for i in pick)
        texts = [self.texts[i] for i in pick] if self.texts else []
        return Parsed([self.ids[i] for i in pick], texts,
                      [self.agents[i] for i in pick], [self.skills[i] for i in pick],
                      self.numbers[:, pick], self.duplicates, self.problems, self.facts,
                      rows)


def parse_chunk(first_number: int, lines: list[str | bytes], where: str,
                default_source: str) -> Parsed:
    """Decode and check one chunk; problems read ``where:line: reason``."""
    ids: list[str] = []
    texts: list[str] = []
    measures: list[tuple[Any, ...]] = []
    problems: list[str] = []
    seen: set[str] = set()
    facts: list[tuple[str, int, float, str | None, str]] = []
    duplicates = 0
    loads = orjson.loads
    for number, raw in enumerate(lines, start=first_number):
        text = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw).strip()
        if not text:
            continue
        try:
            check_depth(text)
            obj = loads(text)
        except TooDeep as exc:
            problems.append(f"{where}:{number}: {exc}")
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        except orjson.JSONDecodeError:
            try:  # the standard parser accepts a little more and explains better
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(f"{where}:{number}: not valid JSON "
                                f"({exc.msg} at column {exc.colno})")
                if len(problems) >= MAX_PROBLEMS:
                    break
                continue
        if isinstance(obj, dict) and "kind" in obj and obj["kind"] != "execution":
            known = len(facts)
            problem = _fact(obj, text, default_source, seen, facts)
            if problem:
                problems.append(f"{where}:{number}: {problem}")
                if len(problems) >= MAX_PROBLEMS:
                    break
            elif len(facts) == known:
                duplicates += 1
            continue
        found = measure(obj)
        if isinstance(found, str):
            problems.append(f"{where}:{number}: {found}")
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        if problems:
            continue  # only looking for more problems now
        rid = obj.get("id")
        if rid is None or "source" not in obj:
            if rid is None:
                rid = content_id(text)
                obj = {"id": rid, **obj}
            obj.setdefault("source", default_source)
            text = json.dumps(obj, separators=(",", ":"))
        if rid in seen:
            duplicates += 1
            continue
        seen.add(rid)
        ids.append(rid)
        texts.append(text)
        measures.append(found)
    if problems:
        return Parsed([], [], [], [], np.empty((10, 0)), duplicates, problems)
    if not measures:
        return Parsed([], [], [], [], np.empty((10, 0)), duplicates, problems, facts)
    agents, skills, *numbers = zip(*measures, strict=True)
    return Parsed(ids, texts, list(agents), list(skills), np.array(numbers, dtype=np.float64),
                  duplicates, problems, facts)


def _fact(obj: dict[str, Any], text: str, default_source: str, seen: set[str],
          facts: list[tuple[str, int, float, str | None, str]]) -> str | None:
    """Check a decision or approval and add it to ``facts``; the problem in words if any."""
    kind = kind_of(obj)
    if isinstance(kind, str):
        return kind
    checked = check_fact(obj, kind)
    if isinstance(checked, str):
        return checked
    rid = obj.get("id")
    if rid is None or "source" not in obj:
        if rid is None:
            rid = content_id(text)
            obj = {"id": rid, **obj}
        obj.setdefault("source", default_source)
        text = json.dumps(obj, separators=(",", ":"))
    if rid not in seen:
        seen.add(rid)
        facts.append((rid, kind, checked[0], checked[1], text))
    return None


Prepare = Callable[[Parsed], Parsed]


def parsed_chunks(lines: Iterable[str | bytes], *, where: str, default_source: str,
                  workers: int | None = None,
                  prepare: Prepare | None = None) -> Generator[Parsed, None, None]:
    """Every chunk of ``lines`` parsed, in order. An input of more than one chunk is
    parsed by worker processes (``workers``, default: the CPUs but one, at most
    ``MAX_WORKERS``), except its first chunk, which this process parses while they start
    on the next ones. ``prepare`` (a module-level function, as it travels to the parser
    processes by name) finishes each chunk where it was parsed."""
    batches = _batches(lines)
    first = next(batches, None)
    second = next(batches, None) if first is not None else None
    count = default_workers() if workers is None else workers

    def parse(batch: tuple[int, list[str | bytes]]) -> Parsed:
        return _parse(batch, where, default_source, prepare)

    if first is None or second is None or count < 1:
        for batch in (first, second):
            if batch is not None:
                yield parse(batch)
        for batch in batches:
            yield parse(batch)
        return
    folder = tempfile.mkdtemp(prefix="cvf-ingest-")
    pool = [_Worker(folder, where, default_source, prepare) for _ in range(count)]
    try:
        sent = received = 0
        for batch in itertools.chain([second], batches):
            pool[sent % count].send(batch)
            sent += 1
            if sent == 1:
                yield parse(first)
            if sent - received > 2 * count:  # two chunks queued per worker keep it busy
                yield pool[received % count].receive()
                received += 1
        while received < sent:
            yield pool[received % count].receive()
            received += 1
    finally:
        for worker in pool:
            worker.stop()
        shutil.rmtree(folder, ignore_errors=True)


class _Worker:
    """One parsing process, fed and drained by this thread alone.

    Chunks and results travel as files in a private folder, and the pipes carry only
    their names, so neither side ever blocks on a full pipe (and no side needs a helper
    thread that would queue for the GIL). Not a process pool: a pool pickles and
    unpickles on helper threads of this process, which wait on the GIL behind the
    writing thread."""

    def __init__(self, folder: str, where: str, default_source: str,
                 prepare: Prepare | None) -> None:
        context = _context()
        tasks_out, self.tasks = context.Pipe(duplex=False)
        self.results, results_in = context.Pipe(duplex=False)
        self.folder = folder
        self.sent = 0
        self.process = context.Process(target=_work, name="cvf-metrics-parser", daemon=True,
                                       args=(tasks_out, results_in, folder, where,
                                             default_source, prepare, os.getpid()))
        self.process.start()
        tasks_out.close()
        results_in.close()

    def send(self, batch: tuple[int, list[str | bytes]]) -> None:
        self.sent += 1
        path = os.path.join(self.folder, f"{self.process.pid}-{self.sent}")
        _dump(path + ".task", batch)
        try:
            self.tasks.send_bytes(path.encode())
        except OSError:
            raise self._gone() from None

    def receive(self) -> Parsed:
        try:
            path = self.results.recv_bytes().decode()
        except (EOFError, OSError):
            raise self._gone() from None
        answer = _load(path + ".result")
        if isinstance(answer, BaseException):
            raise answer
        parsed: Parsed = answer
        return parsed

    def _gone(self) -> RuntimeError:
        self.process.join(timeout=5)
        return RuntimeError(f"the metrics parser process stopped (exit code "
                            f"{self.process.exitcode}); nothing was stored, run the import "
                            "again")

    def stop(self) -> None:
        """Ask the process to finish (forked siblings share pipe ends, so closing ours
        is no end-of-file for it) and make sure it has."""
        with contextlib.suppress(OSError):  # if it is gone already
            self.tasks.send_bytes(_STOP)
        self.tasks.close()
        self.results.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


_STOP = b""


def _parse(batch: tuple[int, list[str | bytes]], where: str, default_source: str,
           prepare: Prepare | None) -> Parsed:
    parsed = parse_chunk(*batch, where, default_source)
    return prepare(parsed) if prepare is not None and not parsed.problems else parsed


def _work(tasks: Any, results: Any, folder: str, where: str, default_source: str,
          prepare: Prepare | None, parent: int) -> None:
    """A parser process: chunks in, ``Parsed`` (or the exception) out, until told to stop
    or the process that started it is gone (killed: then nobody else removes the folder)."""
    while True:
        if not tasks.poll(1.0):
            if os.getppid() != parent:
                shutil.rmtree(folder, ignore_errors=True)
                return
            continue
        try:
            path = tasks.recv_bytes().decode()
        except (EOFError, OSError):
            return
        if not path:  # _STOP
            return
        try:
            first, batch = _load(path + ".task")
            answer: Any = _parse((first, batch), where, default_source, prepare)
        except Exception as exc:  # handed back, raised by the reading side
            answer = exc
        try:
            _dump(path + ".result", answer)
            results.send_bytes(path.encode())
        except OSError:
            return


def _dump(path: str, value: Any) -> None:
    with open(path, "wb") as fh:
        pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _load(path: str) -> Any:
    """Read and delete a file ``_dump`` wrote (by this import's own processes)."""
    with open(path, "rb") as fh:
        value = pickle.load(fh)  # noqa: S301 - written by this import's own processes
    os.unlink(path)
    return value


def default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(0, min(MAX_WORKERS, cpus - 1))


def read_lines(stream: BinaryIO, where: str, limit: int = MAX_LINE) -> Iterator[bytes]:
    """The lines of a byte stream, each read with a bound: a line longer than ``limit``
    bytes stops the import with its line number, after reading at most ``limit`` + 1
    bytes of it (``/dev/zero``, a binary file or one huge line cannot grow memory)."""
    for number in itertools.count(1):
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            raise RecordError([f"{where}:{number}: line longer than {limit:,} bytes, the "
                               f"limit for one JSONL record (is this a JSONL file?)"])
        yield line


def _batches(lines: Iterable[str | bytes]) -> Iterator[tuple[int, list[str | bytes]]]:
    """``(first line number, lines)`` per chunk of at most ``CHUNK`` lines and about
    ``CHUNK_BYTES`` of text; blank lines keep their numbers."""
    batch: list[str | bytes] = []
    first = 1
    size = 0
    for raw in lines:
        batch.append(raw)
        size += len(raw)
        if len(batch) >= CHUNK or size >= CHUNK_BYTES:
            yield first, batch
            first += len(batch)
            batch = []
            size = 0
    if batch:
        yield first, batch


def _context() -> Any:
    """Fork where it is safe (Linux, no other threads: starts in milliseconds), else spawn.
    Never fork under gevent (the gunicorn workers): a forked child would keep running the
    parent's event loop and its connections; greenlets also hide from ``active_count``."""
    if sys.platform == "linux" and threading.active_count() == 1 and not _green():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _green() -> bool:
    """Is this process monkey-patched by gevent? (Never imports gevent itself.)"""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))
