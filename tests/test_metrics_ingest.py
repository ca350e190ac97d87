"""Big imports are parsed by worker processes: same store, same errors, nothing lost."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import tempfile
from pathlib import Path

import pytest

from bot.metrics import ingest
from bot.metrics.record import RecordError
from bot.metrics.store import open_store, pieces

EVERYTHING = pieces(0, 2_000_000_000)


def record(i: int, **over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": f"r{i}", "timestamp": f"2026-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
        "skill": f"skill-{i % 5}", "agent": f"agent-{i % 7}", "risk_level": f"R{i % 4}",
        "decision": ("auto_execute", "scope_guard", "approval_required",
                     "human_intervention")[i % 4],
        "success": i % 9 != 0, "error_type": None, "latency_ms": 10 + i % 500,
        "approval": None, "audit": {"report_posted": True, "approval_recorded": True},
        "source": "test"}
    base.update(over)
    return base


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 100 lines, so a thousand records go through the worker processes, which
    are forked (as the CLI does) so they see the patches a test makes."""
    monkeypatch.setattr(ingest, "CHUNK", 100)
    monkeypatch.setattr(ingest, "_context", lambda: multiprocessing.get_context("fork"))


def snapshot(store: object) -> tuple[object, ...]:
    roll = store.rollup(EVERYTHING)  # type: ignore[attr-defined]
    out = io.StringIO()
    store.export_jsonl(out)  # type: ignore[attr-defined]
    return (roll.main(), roll.agents(), roll.skills(), out.getvalue())


@pytest.mark.usefixtures("small_chunks")
def test_workers_store_exactly_what_a_serial_import_stores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where chunks travel
    lines = [json.dumps(record(i)) for i in range(1_000)] + [json.dumps(record(3))]
    serial, parallel = open_store(":memory:"), open_store(":memory:")
    chunks = ingest.parsed_chunks(lines, where="x", default_source="jsonl", workers=0)
    assert len(list(chunks)) == 11
    serial_result = serial.ingest_lines(lines)
    parallel_result = parallel.ingest_lines(lines)
    assert serial_result == parallel_result
    assert (parallel_result.added, parallel_result.duplicates) == (1_000, 1)
    assert snapshot(parallel) == snapshot(serial)
    assert multiprocessing.active_children() == []
    assert list(tmp_path.iterdir()) == []  # the chunk files and their folder are gone


@pytest.mark.usefixtures("small_chunks")
def test_a_bad_line_late_in_a_big_file_is_named_by_its_line_and_nothing_is_stored() -> None:
    lines = [json.dumps(record(i)) for i in range(1_000)]
    lines[736] = json.dumps(record(736, risk_level="R7"))
    lines[901] = "{oops"
    store = open_store(":memory:")
    with pytest.raises(RecordError) as info:
        store.ingest_lines(lines, where="runs.jsonl")
    assert info.value.problems[0].startswith("runs.jsonl:737: `risk_level` must be one of")
    assert info.value.problems[1].startswith("runs.jsonl:902: not valid JSON")
    assert store.count() == 0 and store.rollup(EVERYTHING).main() == []


@pytest.mark.usefixtures("small_chunks")
def test_at_most_ten_problems_are_listed() -> None:
    lines = [json.dumps(record(i, success="maybe")) for i in range(1_000)]
    with pytest.raises(RecordError) as info:
        open_store(":memory:").ingest_lines(lines)
    assert len(info.value.problems) == 11  # ten problems and "nothing was stored"


@pytest.mark.usefixtures("small_chunks")
def test_a_parser_process_that_dies_fails_the_import_and_loses_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(":memory:")
    store.ingest_lines([json.dumps(record(0, id="before"))])
    real = ingest.parse_chunk

    def dying(first: int, *args: object) -> ingest.Parsed:
        if first > 500:
            os._exit(3)
        return real(first, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "parse_chunk", dying)
    with pytest.raises(RuntimeError, match="parser process stopped"):
        store.ingest_lines([json.dumps(record(i)) for i in range(1_000)])
    assert store.count() == 1
    assert multiprocessing.active_children() == []


@pytest.mark.usefixtures("small_chunks")
def test_an_error_inside_a_parser_process_is_raised_here(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(first: int, *args: object) -> ingest.Parsed:
        raise MemoryError(f"chunk at line {first}")

    monkeypatch.setattr(ingest, "parse_chunk", failing)
    store = open_store(":memory:")
    with pytest.raises(MemoryError, match="chunk at line"):
        store.ingest_lines([json.dumps(record(i)) for i in range(1_000)])
    assert store.count() == 0


def test_one_chunk_never_starts_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_workers(*args: object) -> None:
        raise AssertionError("a worker was started for a small input")

    monkeypatch.setattr(ingest, "_Worker", no_workers)
    result = open_store(":memory:").ingest_lines([json.dumps(record(i)) for i in range(50)])
    assert result.added == 50


def test_parsers_are_spawned_where_forking_is_unsafe(monkeypatch: pytest.MonkeyPatch) -> None:
    """A threaded web server must not fork; with other threads running, parsers are
    started fresh (spawn) and store the same as a serial import."""
    import threading

    monkeypatch.setattr(ingest, "CHUNK", 100)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert ingest._context().get_start_method() == "spawn"
        lines = [json.dumps(record(i)) for i in range(400)]
        parallel = open_store(":memory:")
        assert parallel.ingest_lines(lines).added == 400
    finally:
        stop.set()
        other.join()
    serial = open_store(":memory:")
    serial.ingest_lines(lines)
    assert snapshot(parallel) == snapshot(serial)


def test_a_big_import_from_the_command_line_with_spawned_parsers(tmp_path: Path) -> None:
    """``python -m bot metrics ingest`` where processes are spawned (macOS, Windows, a
    threaded server): the parsers start from scratch and the command runs once."""
    import subprocess
    import sys

    data = tmp_path / "runs.jsonl"
    data.write_text("".join(json.dumps(record(i)) + "\n" for i in range(45_000)))
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "cvf.yml").write_text("metrics:\n  store: m.db\n")
    script = ("import multiprocessing, runpy, sys; multiprocessing.set_start_method('spawn');"
              "import bot.metrics.ingest as i; i._context = multiprocessing.get_context;"
              "sys.argv = ['cvf', 'metrics', 'ingest', sys.argv[1]];"
              "runpy.run_module('bot', run_name='__main__', alter_sys=True)")
    done = subprocess.run([sys.executable, "-c", script, str(data)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("45000 record(s) added") == 1
