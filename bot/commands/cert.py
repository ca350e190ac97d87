"""``cvf cert …``: the certification program by hand, offline, on a checkout.

The same core the bot uses: keys, issuing and verifying certificates, revocation, a
candidate's progress, the public catalog, and the practice paper.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from bot.certification.bank import (
    AnswerKey,
    QuestionBank,
    configured_key_text,
    parse_answer_key,
    parse_bank,
)
from bot.certification.catalog import coverage_gaps, examined_by, lessons_of, program_gaps
from bot.certification.credential import (
    build_credential,
    did_key,
    dump_credential,
    generate_keypair,
    issuer_for,
    load_private_key,
    load_public_key,
    sign_credential,
    verify_credential,
)
from bot.certification.documents import load_document
from bot.certification.exam import Choice, ExamItem, ExamPaper, draw_exam
from bot.certification.grading import grade_multiple_choice
from bot.certification.itemstats import graded_attempt, item_statistics
from bot.certification.lessons import lesson_problems
from bot.certification.lint import MIN_PER_MODULE, lint_bank
from bot.certification.materials import Materials
from bot.certification.registry import add_revocation, iso, parse_time, with_certificate
from bot.cli import CliState, pass_state
from bot.durations import parse_duration
from bot.errors import CvfError, InputError
from bot.templating import render

PRACTICE_DIR = "certification/practice"
RUBRIC_LEVELS = ("practical_project", "case_study", "scenario_simulation")


def practice_paths(level: str) -> tuple[str, str]:
    """The practice paper of ``level`` and its (public) answer key."""
    return f"{PRACTICE_DIR}/{level}-sample.yml", f"{PRACTICE_DIR}/{level}-sample-key.yml"


def register(cli: click.Group) -> None:
    cli.add_command(cert)


@click.group("cert")
def cert() -> None:
    """Certification: keys, certificates, revocation, progress and the catalog."""


def _materials(state: CliState) -> Materials:
    root = Path(state.root)

    def read(path: str) -> str | None:
        file = root / path
        return file.read_text("utf-8") if file.is_file() else None

    return Materials(section=state.config.section("certification"), read=read)


def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        moment = parse_time(text)
    except ValueError:
        raise InputError(f'expected an ISO 8601 time like "2026-01-31T12:00:00Z", got "{text}"'
                         ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _read(path: str, what: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{what} not found", where=path)
    try:
        return file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what}: {exc}", where=path) from None


@cert.command("keygen")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for private-key.pem (keep secret) and public-key.pem (publish).")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
def keygen(out_dir: str, force: bool) -> None:
    """Create an Ed25519 issuer key pair."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    private_path, public_path = folder / "private-key.pem", folder / "public-key.pem"
    for path in (private_path, public_path):
        if path.exists() and not force:
            raise InputError(f"{path} already exists", hint="pass --force to replace the keys "
                             "(certificates signed with the old key stop verifying)")
    private, public = generate_keypair()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    public_path.write_bytes(public)
    click.echo(f"wrote {private_path} (secret: store it as the signing-key secret, never commit)")
    click.echo(f"wrote {public_path} (publish it at certification.public_key)")
    click.echo(f"key id: {did_key(load_public_key(public)).split('#')[0]}")


@cert.command("issue")
@click.option("--login", required=True, help="The candidate's GitHub login.")
@click.option("--level", "level_id", required=True, help="Level id, e.g. foundation.")
@click.option("--score", required=True, type=click.IntRange(0, 100), help="Exam score 0-100.")
@click.option("--evidence", required=True, help="URL of the submission (usually the PR).")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False),
              help="The issuer's private key (PEM).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the credential (JSON).")
@click.option("--attempt", default=1, show_default=True, type=click.IntRange(1, None))
@click.option("--issued", default=None, help="Issue time (ISO 8601, UTC); default now.")
@click.option("--register", is_flag=True,
              help="Also add the certificate to the registry under --root.")
@pass_state
def issue(state: CliState, login: str, level_id: str, score: int, evidence: str, key_path: str,
          out_path: str, attempt: int, issued: str | None, register: bool) -> None:
    """Sign an Open Badges 3.0 certificate."""
    materials = _materials(state)
    section = materials.section
    level = materials.program.level(level_id)
    if score < level.pass_score:
        raise InputError(f"score {score} is below the {level.id} pass score {level.pass_score}",
                         hint="a certificate is only issued for a pass")
    if not evidence.startswith(("https://", "http://")):
        raise InputError(f"--evidence must be a URL, got {evidence!r}",
                         hint="link the submission PR")
    key = load_private_key(_read(key_path, "private key"), source=key_path)
    now = _now(issued)
    validity = section["certificate_validity"]
    credential = sign_credential(build_credential(
        level, login=login, score=score, evidence=evidence,
        issuer=issuer_for(section, os.environ.get("GITHUB_REPOSITORY")), issued=now,
        attempt=attempt, valid_for=parse_duration(validity) if validity else None), key, now)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_text(dump_credential(credential), "utf-8")
    click.echo(f"wrote {out_path}: {level.title} for {login}, score {score}, id {credential['id']}")
    if register:
        registry_path = Path(state.root) / section["registry"]
        old = registry_path.read_text("utf-8") if registry_path.is_file() else None
        entry = {"id": credential["id"], "login": login, "level": level.id, "attempt": attempt,
                 "score": score, "issued": credential["validFrom"],
                 "valid_until": credential.get("validUntil"),
                 "file": _relative(Path(out_path), Path(state.root)), "evidence": evidence}
        registry_path.parent.mkdir(parents=True, exist_ok=True)
        registry_path.write_text(with_certificate(old, entry), "utf-8")
        click.echo(f"registered in {section['registry']}")


@cert.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--public-key", "public_key", default=None, type=click.Path(dir_okay=False),
              help="Issuer public key (PEM); default: certification.public_key under --root.")
@click.option("--now", "now_text", default=None, help="Check validity at this time (ISO 8601).")
@pass_state
def verify(state: CliState, file: str, public_key: str | None, now_text: str | None) -> None:
    """Check a certificate offline: signature, issuer key, data, expiry and revocation."""
    materials = _materials(state)
    section = materials.section
    key_path = public_key or str(Path(state.root) / section["public_key"])
    if not Path(key_path).is_file():
        raise InputError("issuer public key not found", where=key_path,
                         hint="pass --public-key PUB (the issuer's public-key.pem)")
    key = load_public_key(_read(key_path, "public key"), source=key_path)
    registry = materials.registry()
    text = _read(file, "certificate")
    recorded = None
    try:
        cert_id = json.loads(text).get("id")
    except (ValueError, AttributeError):
        cert_id = None
    if cert_id:
        recorded = next((c for c in registry.certificates if c["id"] == cert_id), None)
    result = verify_credential(text, public_key=key, now=_now(now_text), revoked=registry.revoked,
                               issuer_id=issuer_for(section, os.environ.get(
                                   "GITHUB_REPOSITORY")).id if public_key is None else None,
                               recorded=recorded)
    if not result.ok:
        problems = [f"{file}: {p}" for p in result.problems]
        raise _Problems(problems)
    click.echo(f"{file}: valid — {result.login} holds {result.level} "
               f"(score {result.score}), signed by {did_key(key).split('#')[0]}")


class _Problems(CvfError):
    def __init__(self, problems: list[str]):
        super().__init__(problems[0])
        self.problems = problems


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


@cert.command("audit")
@click.option("--now", "now_text", default=None, help="Check validity at this time (ISO 8601).")
@pass_state
def audit(state: CliState, now_text: str | None) -> None:
    """Verify every certificate the registry lists against its file and the issuer key."""
    materials = _materials(state)
    section = materials.section
    key_path = Path(state.root) / section["public_key"]
    key = load_public_key(_read(str(key_path), "issuer public key"), source=str(key_path))
    registry = materials.registry()
    now = _now(now_text)
    problems: list[str] = []
    valid = 0
    for entry in registry.certificates:
        file = Path(state.root) / entry["file"]
        if not file.is_file():
            problems.append(f"{entry['file']}: listed in {section['registry']} for "
                            f"{entry['login']} ({entry['level']}) but missing")
            continue
        result = verify_credential(file.read_text("utf-8"), public_key=key, now=now,
                                   revoked=registry.revoked,
                                   issuer_id=issuer_for(section, os.environ.get(
                                       "GITHUB_REPOSITORY")).id,
                                   recorded=entry)
        if result.credential is not None and result.credential.get("id") != entry["id"]:
            problems.append(f"{entry['file']}: id {result.credential.get('id')} is not the "
                            f"registered {entry['id']}")
        problems.extend(f"{entry['file']}: {p}" for p in result.problems
                        if not (entry["id"] in registry.revoked and "revoked" in p))
        valid += result.ok
    revoked = sum(1 for e in registry.certificates if e["id"] in registry.revoked)
    click.echo(f"{len(registry.certificates)} certificate(s): {valid} valid, {revoked} revoked")
    if problems:
        raise _Problems(problems)


@cert.command("revoke")
@click.argument("certificate")
@click.option("--reason", required=True, help="Why (published in the revocation list).")
@click.option("--now", "now_text", default=None, help="Revocation time (ISO 8601); default now.")
@pass_state
def revoke(state: CliState, certificate: str, reason: str, now_text: str | None) -> None:
    """Revoke a certificate by id (urn:uuid:…) or by its file."""
    section = state.config.section("certification")
    cert_id = certificate
    if not certificate.startswith("urn:"):
        try:
            cert_id = str(json.loads(_read(certificate, "certificate"))["id"])
        except (ValueError, KeyError, TypeError):
            raise InputError("not a certificate file (no top-level id)", where=certificate,
                             hint="pass the certificate's id (urn:uuid:…) or its JSON file"
                             ) from None
    path = Path(state.root) / section["revocations"]
    old = path.read_text("utf-8") if path.is_file() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(add_revocation(old, cert_id, reason, _now(now_text)), "utf-8")
    click.echo(f"revoked {cert_id} in {section['revocations']}; commit the file to publish it")


@cert.command("progress")
@click.argument("login")
@click.option("--now", "now_text", default=None, help="Evaluate at this time (ISO 8601).")
@pass_state
def progress(state: CliState, login: str, now_text: str | None) -> None:
    """A candidate's levels, attempts and next step."""
    materials = _materials(state)
    program = materials.program
    registry = materials.registry()
    now = _now(now_text)
    section = materials.section
    held = program.covered_by(registry.held_levels(login, now))
    rows: list[dict[str, Any]] = []
    next_step = "nothing left: every level is held"
    cooldown = parse_duration(section["retake_cooldown"])
    for level in program.levels:
        attempts = registry.attempts_of(login, level.id)
        failed = [parse_time(a["graded_at"]) for a in attempts
                  if a["status"] == "failed" and a.get("graded_at")]
        ready = max(failed) + cooldown if failed else None
        missing = program.missing_prerequisites(level.id, held)
        if level.id in held:
            state_text = "held"
        elif any(a["status"] in ("open", "reviewing") for a in attempts):
            state_text = "in progress"
        elif missing:
            state_text = "locked (needs " + ", ".join(missing) + ")"
        elif ready is not None and ready > now:
            state_text = f"retake from {iso(ready)}"
        else:
            state_text = "available"
        rows.append({"level": level.id, "state": state_text, "attempts": [
            {"attempt": a["attempt"], "status": a["status"], "score": a.get("score"),
             "graded_at": a.get("graded_at")} for a in attempts]})
        if next_step.startswith("nothing") and level.id not in held:
            if state_text == "in progress":
                next_step = f"finish the open {level.id} exam"
            elif ready is not None:
                next_step = (f"retake {level.id} with `/cert request {level.id}`"
                             + (f" from {iso(ready)}" if ready > now else ""))
            else:
                next_step = f"request the {level.id} exam with `/cert request {level.id}`"
    click.echo(render("certification/progress.txt", login=login, rows=rows,
                      next_step=next_step), nl=False)


@cert.command("catalog")
@click.option("--check", is_flag=True, help="Fail when certification/README.md is stale.")
@click.option("--now", "now_text", default=None, help="Count holders at this time (ISO 8601).")
@pass_state
def catalog(state: CliState, check: bool, now_text: str | None) -> None:
    """Render the public catalog to certification/README.md."""
    materials = _materials(state)
    program = materials.program
    # Every bank, rubric and lesson must load, and every objective be taught and
    # examined, or the catalog promises what the program does not deliver.
    gaps = program_gaps(materials)
    if gaps:
        raise _Problems(gaps)
    lessons = {level.id: lessons_of(materials, level) for level in program.levels}
    examined: dict[str, str] = {}
    for level in program.levels:
        for objective, by in examined_by(materials, level).items():
            questions = [b for b in by if not b.startswith("criterion ")]
            examined[objective] = (f"{len(questions)} questions" if questions else
                                   ", ".join(sorted(set(by))))
    lessons_dir = materials.section["lessons_dir"].rstrip("/")
    link_base = lessons_dir.removeprefix("certification/")
    registry = materials.registry()
    now = _now(now_text)
    logins = sorted({c["login"] for c in registry.certificates}, key=str.lower)
    holders: dict[str, list[dict[str, str]]] = {level.id: [] for level in program.levels}
    for login in logins:
        for level_id in sorted(program.covered_by(registry.held_levels(login, now))):
            holders[level_id].append({"login": login})
    text = render("certification/catalog.md", program=program, holders=holders,
                  lessons=lessons, link_base=link_base, examined=examined,
                  assignments={level.id: (len(materials.rubric(level.id).assignments)
                                          if level.exam_format in RUBRIC_LEVELS else 0)
                               for level in program.levels},
                  public_key=materials.section["public_key"],
                  revocations=materials.section["revocations"])
    target = Path(state.root) / "certification" / "README.md"
    if check:
        current = target.read_text("utf-8") if target.is_file() else ""
        if current != text:
            raise CvfError("certification/README.md is stale",
                           hint="run `cvf cert catalog` and commit the result")
        click.echo("certification/README.md is up to date")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, "utf-8")
    click.echo(f"wrote {target}")


@cert.command("exam")
@click.argument("login")
@click.argument("level_id")
@click.option("--attempt", default=1, show_default=True, type=click.IntRange(1, None))
@pass_state
def exam(state: CliState, login: str, level_id: str, attempt: int) -> None:
    """Print the multiple-choice paper a candidate gets (same draw as the bot)."""
    materials = _materials(state)
    level = materials.program.level(level_id)
    if level.exam_format != "multiple_choice":
        raise InputError(f"{level.id} is a {level.exam_label} exam, not multiple choice",
                         hint="see certification/rubrics/ for its assignments")
    paper = draw_exam(materials.bank(level.id), level, login, attempt,
                      materials.section["questions_per_module"])
    for item in paper.items:
        click.echo(f"{item.number}. [{item.question_id}] {item.text}")
        for choice in item.choices:
            click.echo(f"   {choice.letter}) {choice.text}")


@cert.command("practice")
@click.argument("answers_file", type=click.Path(dir_okay=False))
@pass_state
def practice(state: CliState, answers_file: str) -> None:
    """Grade your answers to a level's practice paper (certification/practice/).

    The answers file names the level (`level: architect`) and answers each question by
    its letter; you see your score, the right answers and why.
    """
    materials = _materials(state)
    root = Path(state.root)
    program = materials.program
    data = load_document(_read(answers_file, "answers"), kind="submission",
                         source=answers_file).data
    level = program.level(str(data["level"]))
    bank_path, key_path = practice_paths(level.id)
    bank = parse_bank(_read(str(root / bank_path), f"the {level.id} practice paper"), program,
                      source=bank_path)
    key = parse_answer_key(_read(str(root / key_path), f"the {level.id} practice key"), bank,
                           source=key_path)
    # The practice paper is shown in bank order with the bank's own letters.
    items = tuple(ExamItem(i + 1, q.id, q.objective, q.module, q.text,
                           tuple(Choice(o.upper(), o, t) for o, t in q.options))
                  for i, q in enumerate(bank.questions))
    paper = ExamPaper("practice", level.id, 1, "", items)
    answers = {str(k): str(v) for k, v in (data.get("answers") or {}).items()}
    result = grade_multiple_choice(paper, answers, key, level)
    click.echo(f"practice score {result.score}/100 ({result.correct}/{result.total}); "
               f"the real exam passes at {level.pass_score}")
    for question in bank.questions:
        given = answers[question.id].lower()
        right = key.answers[question.id]
        mark = "ok " if given == right else "   "
        explanation = key.explanations.get(question.id, "")
        click.echo(f"{mark}{question.id}: you {given}, answer {right}. {explanation}".rstrip())


def _question_line(text: str, question_id: str) -> int | None:
    """The line of ``- id: <question_id>`` in a bank, so a finding points at the question."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().lstrip("- ").strip() in (f"id: {question_id}", f'id: "{question_id}"'):
            return number
    return None


def _key_for(level_id: str, bank: QuestionBank, keys_dir: str | None,
             given: dict[str, str], section: dict[str, Any]) -> AnswerKey | None:
    """The key to lint ``level_id``'s bank with: --key, then --keys DIR, then the
    configured secret or file when it is for this level; None when there is none."""
    path = given.get(level_id)
    if path is None and keys_dir is not None and (Path(keys_dir) / f"{level_id}.yml").is_file():
        path = str(Path(keys_dir) / f"{level_id}.yml")
    if path is not None:
        return parse_answer_key(_read(path, "answer key"), bank, source=path)
    found = configured_key_text(section)
    if found is None:
        return None
    text, source = found
    located = load_document(text, kind="answer_key", source=source)
    if located.data.get("level") != level_id:
        return None
    return parse_answer_key(text, bank, source=source)


def _parse_key_options(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for value in values:
        level_id, sep, path = value.partition("=")
        if not sep or not level_id or not path:
            raise InputError(f"--key expects LEVEL=FILE, got {value!r}",
                             hint="e.g. --key foundation=private/foundation-key.yml")
        out[level_id] = path
    return out


@cert.command("lint")
@click.option("--key", "key_options", multiple=True, metavar="LEVEL=FILE",
              help="Answer key of a level's bank (repeatable).")
@click.option("--keys", "keys_dir", default=None, type=click.Path(file_okay=False),
              help="Folder of answer keys named <level>.yml.")
@pass_state
def lint(state: CliState, key_options: tuple[str, ...], keys_dir: str | None) -> None:
    """Check the question banks and practice papers cannot be passed by their shape.

    The correct option must be the longest in at most 35% of a bank's questions and sit
    in each position about equally (within 10 points of uniform); options must be
    distinct and plausible; every objective must be examined (by questions or a rubric)
    and taught by its module's lesson. The rules about the correct option need the key.
    """
    materials = _materials(state)
    program = materials.program
    root = Path(state.root)
    given = _parse_key_options(key_options)
    problems: list[str] = []
    notes: list[str] = []
    checked = 0
    for level in program.levels:
        papers: list[tuple[str, str | None, int]] = []
        if level.exam_format == "multiple_choice":
            bank_path = f"{materials.section['questions_dir'].rstrip('/')}/{level.id}.yml"
            papers.append((bank_path, None, MIN_PER_MODULE))
        practice_bank, practice_key = practice_paths(level.id)
        if (root / practice_bank).is_file():
            papers.append((practice_bank, practice_key, 4))
        for path, key_path, minimum in papers:
            text = _read(str(root / path), f"the {level.id} questions")
            bank = parse_bank(text, program, source=path)
            if key_path is not None:
                key: AnswerKey | None = parse_answer_key(
                    _read(str(root / key_path), f"the {level.id} practice key"), bank,
                    source=key_path)
            else:
                key = _key_for(level.id, bank, keys_dir, given, materials.section)
                if key is None:
                    notes.append(f"{path}: no answer key given, so the rules about the correct "
                                 f"option were not checked (pass --keys DIR or --key "
                                 f"{level.id}=FILE, or set "
                                 f"${materials.section['answer_key_env']})")
            for finding in lint_bank(bank, level, key, minimum=minimum):
                line = _question_line(text, finding.questions[0]) if finding.questions else None
                problems.append(f"{path}:{line}: {finding}" if line else f"{path}: {finding}")
            checked += len(bank.questions)
        problems.extend(coverage_gaps(materials, level))
        problems.extend(lesson_problems(lessons_of(materials, level), level))
    for note in notes:
        click.echo(note, err=True)
    if problems:
        raise _Problems(problems)
    click.echo(f"{checked} question(s) in {len(program.levels)} level(s): every bank passes")


@cert.command("stats")
@click.argument("level_id")
@click.argument("submissions", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--key", "key_path", default=None, type=click.Path(dir_okay=False),
              help="The level's answer key; default: the configured secret or file.")
@pass_state
def stats(state: CliState, level_id: str, submissions: tuple[str, ...],
          key_path: str | None) -> None:
    """Item statistics from graded submissions: difficulty and discrimination per question.

    SUBMISSIONS default to every certification/submissions/<login>/<level>.yml; each is
    regraded on the paper its candidate was given (login from the folder, attempt from
    the file).
    """
    materials = _materials(state)
    level = materials.program.level(level_id)
    if level.exam_format != "multiple_choice":
        raise InputError(f"{level.id} is a {level.exam_label} exam; item statistics are for "
                         f"multiple-choice banks")
    bank = materials.bank(level.id)
    if key_path is not None:
        key = parse_answer_key(_read(key_path, "answer key"), bank, source=key_path)
    else:
        found = configured_key_text(materials.section)
        if found is None:
            raise InputError("no answer key", hint=f"pass --key FILE or set "
                                                   f"${materials.section['answer_key_env']}")
        key = parse_answer_key(found[0], bank, source=found[1])
    files = [Path(f) for f in submissions] or sorted(
        (Path(state.root) / materials.section["submissions_dir"]).glob(f"*/{level.id}.yml"))
    attempts = []
    for file in files:
        data = load_document(_read(str(file), "submission"), kind="submission",
                             source=str(file)).data
        if data["level"] != level.id or not data.get("answers"):
            continue
        paper = draw_exam(bank, level, file.parent.name, int(data.get("attempt", 1)),
                          materials.section["questions_per_module"])
        answers = {str(k): str(v) for k, v in data["answers"].items()}
        try:
            attempts.append(graded_attempt(paper, answers, key, level))
        except InputError as exc:
            click.echo(f"{file}: skipped, not gradable: {exc.message}", err=True)
    rows = item_statistics(bank, attempts)
    passed = sum(a.passed for a in attempts)
    click.echo(f"{level.id}: {len(attempts)} graded attempt(s), {passed} passed, "
               f"{len(attempts) - passed} failed")
    click.echo(f"{'question':<9} {'objective':<9} {'answered':>8} {'difficulty':>10} "
               f"{'discrimination':>14}  flags")
    for row in rows:
        difficulty = "—" if row.difficulty is None else f"{row.difficulty:.2f}"
        disc = "—" if row.discrimination is None else f"{row.discrimination:+.2f}"
        flags = "; ".join(row.flags) if row.answered else "not answered yet"
        click.echo(f"{row.question:<9} {row.objective:<9} {row.answered:>8} {difficulty:>10} "
                   f"{disc:>14}  {flags}")
