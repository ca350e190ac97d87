"""Certification on GitHub: exam requests, submissions, reviewer grading, certificates.

Commands (in issue and PR comments, one per line, outside code fences and quotes):
``/cert request <level>``, ``/cert submit`` + a ```yaml block, ``/grade criterion=score …``,
``/cert help``. The "Exam request" issue form is the same as ``/cert request``.
Submissions also arrive as a PR adding ``<submissions_dir>/<login>/<level>.yml``.

Every answer to a command is a sticky comment keyed by what triggered it, and every
state change is a compare-and-swap rewrite of the registry, so a redelivered event
posts nothing new and records nothing twice. Secrets (the answer key, the signing key)
come from the environment variables config names; they are never written anywhere.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.certification.bank import AnswerKey, configured_key_text, parse_answer_key
from bot.certification.credential import (
    build_credential,
    dump_credential,
    issuer_for,
    load_private_key,
    sign_credential,
)
from bot.certification.documents import DocumentError, load_document
from bot.certification.exam import draw_exam
from bot.certification.gate import LevelGate
from bot.certification.grading import SubmissionError, grade_multiple_choice, report_rows
from bot.certification.materials import Materials
from bot.certification.program import Level
from bot.certification.registry import (
    Registry,
    check_request,
    iso,
    with_attempt,
    with_certificate,
)
from bot.certification.rubric import ReviewerGrade, consensus, find_grade_commands, parse_grade
from bot.certification.scenario import grade_scenario, plan_from_submission
from bot.config import Config
from bot.durations import parse_duration
from bot.errors import CvfError
from bot.events import Event, OwnCommit, router, utcnow
from bot.github.port import CheckRunOutput, GitHubPort
from bot.markdown import Md, code, command_lines, md, mention
from bot.replies import did_you_mean, reply_body
from bot.templating import render

_REQUEST = re.compile(r"^/cert\s+request\s+(\S+)\s*$", re.IGNORECASE)
_SUBMIT = re.compile(r"^/cert\s+submit\b", re.IGNORECASE)
_HELP = re.compile(r"^/cert(\s+help)?\s*$", re.IGNORECASE)
_ANY_CERT = re.compile(r"^/cert\b", re.IGNORECASE)
_YAML_BLOCK = re.compile(r"```(?:ya?ml)?[ \t]*\n(.*?)\n[ \t]*```", re.DOTALL)
_FORM_LEVEL = re.compile(r"^#{1,6}\s*Level\s*\n+\s*([A-Za-z0-9_-]+)\s*$",
                         re.IGNORECASE | re.MULTILINE)
EXAM_FORM_LABEL = "exam-request"
CHECK_NAME = "cvf/certification"
HELP = Md("`/cert request <level>` asks for an exam; `/cert submit` followed by a fenced "
          "`` ```yaml `` block submits answers; `/grade criterion=score …` scores a rubric "
          "exam (reviewers only).")


# -- the gate other concerns call ------------------------------------------------------
def level_gate(gh: GitHubPort, config: Config, now: datetime) -> LevelGate:
    """The certification gate for one event: ``gate.may_vote(login, rfc_type)``,
    ``gate.may_approve(login, "R3")``, ``gate.holds(login, "architect")``.

    Reads the program, registry and revocation list from the default branch (three file
    reads); build it once per event.
    """
    materials = _materials(gh, config)
    return LevelGate(program=materials.program, registry=materials.registry(),
                     section=config.section("certification"), now=now)


# -- event handlers --------------------------------------------------------------------
@router.register("issue_comment", "created", "edited")
def on_comment(event: Event, gh: GitHubPort) -> None:
    """Answer this comment's commands, then any earlier command in the thread whose delivery
    was lost (a cancelled run, a dropped webhook)."""
    if event.sender_is_bot:
        return
    comment = event.payload.get("comment") or {}
    body = str(comment.get("body") or "")
    number = int((event.payload.get("issue") or {}).get("number", 0))
    login = str((comment.get("user") or {}).get("login") or event.sender)
    comment_id = comment.get("id")
    if number:
        gh.list_issue_comments(number)  # the listing says which comments have reactions
    _answer(event, gh, number, login, body, comment_id=comment_id,
            url=str(comment.get("html_url") or ""))
    if event.action == "created" and number:
        catch_up(event, gh, number)


def catch_up(event: Event, gh: GitHubPort, number: int) -> None:
    """Answer every `/cert …` or `/grade` comment of ``number`` the bot has not answered
    yet. The record that a comment was answered is the bot's reply naming it (its hidden
    marker) or, when all went well without a reply, the bot's 👍 on it; the delivery's
    comment listing says which comments have no reaction at all, so only a command with
    reactions costs a read."""
    bot = str(event.config.section("github")["bot_login"]).lower()
    comments = gh.list_issue_comments(number)
    mine = [c.body for c in comments if c.author.lower() in (bot, bot.removesuffix("[bot]"))]
    for comment in comments:
        author = comment.author.lower()
        if comment.author_is_bot or author in (bot, bot.removesuffix("[bot]")):
            continue
        if not _command_lines(comment.body) and not find_grade_commands(comment.body):
            continue
        replied = re.compile(rf"<!-- cvf:cert-reply:c{comment.id}(?!\d)")
        if any(replied.search(body) for body in mine):
            continue
        if _thumbed(event, gh, comment.id):
            continue
        _answer(event, gh, number, comment.author, comment.body, comment_id=comment.id,
                url=comment.html_url)


def _answer(event: Event, gh: GitHubPort, number: int, login: str, body: str, *,
            comment_id: object, url: str) -> None:
    """Run the comment's certification commands; every reply is keyed by the comment, so
    answering it again (a redelivery, a catch-up race) changes nothing. A 👍 records that
    a command took effect without a reply naming it; one that changed nothing (asking
    again for the exam already posted, a grade after the decision) gets none, and a later
    catch-up runs it again to the same no-op."""
    ctx = _Context(event, gh, login, number, trigger=f"c{comment_id or ''}", url=url)
    writes = gh.stats.writes
    commands = _command_lines(body)
    for line in commands:
        request = _REQUEST.match(line)
        if request:
            level_id = request.group(1).lower()
            ctx.guard(lambda level_id=level_id, line=line: ctx.request(level_id, quote=line),
                      quote=line)
        elif _SUBMIT.match(line):
            ctx.guard(lambda line=line: ctx.submit_comment(body, quote=line), quote=line)
        elif _HELP.match(line):
            ctx.reply(Md(f"certification commands: {HELP}"), quote=line)
        elif _ANY_CERT.match(line):
            headline, hint = _unknown_cert(line)
            ctx.reply(headline, quote=line, hint=hint)
    grades = find_grade_commands(body)
    if grades:
        ctx.guard(lambda: ctx.grade(body))
    took_effect = gh.stats.writes > writes
    if (commands or grades) and took_effect and not ctx.replied \
            and isinstance(comment_id, int) and not _thumbed(event, gh, comment_id):
        gh.add_comment_reaction(comment_id, "+1")


def _thumbed(event: Event, gh: GitHubPort, comment_id: int) -> bool:
    """Whether the bot's 👍 (its record of a command answered) is on the comment."""
    bot = str(event.config.section("github")["bot_login"]).lower()
    return any(r.user.lower() == bot and r.content == "+1"
               for r in gh.list_comment_reactions(comment_id))


def _unknown_cert(line: str) -> tuple[Md, Md]:
    """(headline, what to do instead) for a ``/cert`` line no command matched."""
    word = (line.split()[1:2] or [""])[0].lower()
    guess = did_you_mean(word, ("request", "submit", "help")) if word else None
    if guess:
        return (md("{} is not a certification command. Did you mean {}?",
                   code(f"/cert {word}"), code(f"/cert {guess}")), HELP)
    return Md("unknown `/cert` command."), HELP


@router.register("issues", "opened")
def on_issue_opened(event: Event, gh: GitHubPort) -> None:
    if event.sender_is_bot:
        return
    issue = event.payload.get("issue")
    if not isinstance(issue, dict):
        return
    labels = {str(label.get("name", "")) for label in issue.get("labels") or []
              if isinstance(label, dict)}
    match = _FORM_LEVEL.search(str(issue.get("body") or ""))
    if EXAM_FORM_LABEL not in labels and match is None:
        return
    login = str((issue.get("user") or {}).get("login") or event.sender)
    ctx = _Context(event, gh, login, int(issue.get("number", 0)), trigger="issue",
                   url=str(issue.get("html_url") or ""))
    if match is None:
        ctx.reply("this exam request does not say which level", hint="edit the issue or "
                  "comment `/cert request <level>`")
        return
    level_id = match.group(1).lower()
    ctx.guard(lambda: ctx.request(level_id, quote=None))


@router.register("pull_request", "opened", "synchronize", "reopened")
def on_pull_request(event: Event, gh: GitHubPort) -> None:
    if event.sender_is_bot:
        return
    pull_request = event.payload.get("pull_request")
    number = pull_request.get("number") if isinstance(pull_request, dict) else None
    if not isinstance(number, int):
        return
    section = event.config.section("certification")
    prefix = section["submissions_dir"].rstrip("/") + "/"
    changed_files = gh.list_pull_files(number)
    files = [f for f in changed_files
             if f.filename.startswith(prefix) and f.status != "removed"]
    guarded = [f.filename for f in changed_files if _bot_managed(f.filename, section)]
    if not files and not guarded:
        return
    pull = gh.get_pull(number)
    if guarded:
        _flag_bot_managed(gh, pull.head_sha, guarded)
    if not files:
        return
    ctx = _Context(event, gh, pull.author, number, trigger=f"pr{pull.head_sha[:12]}",
                   url=pull.html_url)
    for changed in files:
        ctx.guard(lambda changed=changed: ctx.submit_file(changed.filename, pull.head_sha))


@router.check(lambda config: CHECK_NAME)
def refresh_flag(event: Event, gh: GitHubPort, number: int,
                 own_commit: OwnCommit | None) -> None:
    """Flag again, on the current head, a pull request changing bot-managed records."""
    section = event.config.section("certification")
    guarded = [f.filename for f in gh.list_pull_files(number)
               if f.status != "removed" and _bot_managed(f.filename, section)]
    if guarded:
        head = own_commit.sha if own_commit is not None else gh.get_pull(number).head_sha
        _flag_bot_managed(gh, head, guarded)


def _bot_managed(path: str, section: dict[str, Any]) -> bool:
    """Records only the bot writes: a PR changing them could forge a certificate."""
    exact = {section["registry"], section["revocations"]}
    return path in exact or path.startswith(section["certificates_dir"].rstrip("/") + "/")


def _flag_bot_managed(gh: GitHubPort, head_sha: str, paths: list[str]) -> None:
    listed = "\n".join(f"- `{p}`" for p in paths[:50])
    gh.set_check_run(head_sha, CHECK_NAME, status="completed", conclusion="failure",
                     output=CheckRunOutput(
                         title="Changes certification records the bot keeps",
                         summary="Certificates and the registry are written only by the "
                                 "certification bot (revocations with `cvf cert revoke` by a "
                                 "maintainer, reviewed with care). This pull request changes:\n"
                                 + listed))


# -- the work --------------------------------------------------------------------------
@dataclass
class _Context:
    event: Event
    gh: GitHubPort
    login: str
    number: int
    trigger: str
    url: str
    loaded: Materials | None = None
    replied: bool = False

    @property
    def section(self) -> dict[str, Any]:
        return self.event.config.section("certification")

    @property
    def materials(self) -> Materials:
        if self.loaded is None:
            self.loaded = _materials(self.gh, self.event.config)
        return self.loaded

    @property
    def now(self) -> datetime:
        return self.event.now

    def guard(self, action: Any, *, quote: str | None = None) -> None:
        """Run ``action``; a user-fixable error becomes a reply, never a failed delivery."""
        try:
            action()
        except CvfError as exc:
            problems = getattr(exc, "problems", None)
            if not problems:
                self.reply(str(exc), quote=quote)
            elif len(problems) == 1:
                self.reply(problems[0], quote=quote, hint=exc.hint)
            else:
                self.reply("that could not be done:", quote=quote, problems=problems,
                           hint=exc.hint)

    def reply(self, headline: str, *, quote: str | None = None,
              problems: list[str] | None = None, hint: str | None = None,
              key: str = "") -> None:
        marker = f"<!-- cvf:cert-reply:{self.trigger}{key}:{_short(headline)} -->"
        body = reply_body(marker, self.login, headline, quote=quote, url=self.url,
                          details=problems or [], instead=hint)
        self.gh.upsert_sticky_comment(self.number, marker, body)
        self.replied = True

    # -- request --------------------------------------------------------------------
    def request(self, level_id: str, *, quote: str | None) -> None:
        program = self.materials.program
        level = program.level(level_id)
        registry = self.materials.registry()
        decision = check_request(program, registry, self.login, level.id, self.now,
                                 cooldown=parse_duration(self.section["retake_cooldown"]),
                                 max_attempts=self.section["max_attempts"])
        if not decision.allowed:
            existing = decision.existing
            if existing is not None and int(existing.get("request", -1)) == self.number:
                self._post_exam(level, int(existing["attempt"]))
                return
            where = (f" (issue #{existing['request']})" if existing is not None else "")
            self.reply(f"no new {level.id} exam: {decision.reason}{where}", quote=quote)
            return
        attempt = {"login": self.login, "level": level.id, "attempt": decision.attempt,
                   "status": "open", "format": level.exam_format, "requested_at": iso(self.now),
                   "request": self.number}
        self._record(attempt, f"certification: {self.login} starts {level.id} attempt "
                              f"{decision.attempt}")
        self._post_exam(level, decision.attempt)

    def _post_exam(self, level: Level, attempt: int) -> None:
        marker = f"<!-- cvf:cert-exam:{self.login.lower()}:{level.id}:{attempt} -->"
        paper = None
        assignments: tuple[Any, ...] = ()
        criteria: tuple[Any, ...] = ()
        if level.exam_format == "multiple_choice":
            paper = draw_exam(self.materials.bank(level.id), level, self.login, attempt,
                              self.section["questions_per_module"])
        else:
            rubric = self.materials.rubric(level.id)
            assignments, criteria = rubric.assignments, rubric.criteria
        body = render("certification/exam.md", marker=marker, level=level, attempt=attempt,
                      candidate=mention(self.login), paper=paper, assignments=assignments,
                      criteria=criteria,
                      scenario_based=level.exam_format == "scenario_simulation",
                      submission_path=self._submission_path(level.id))
        self.gh.upsert_sticky_comment(self.number, marker, body)

    def _submission_path(self, level_id: str) -> str:
        return f"{self.section['submissions_dir'].rstrip('/')}/{self.login}/{level_id}.yml"

    # -- submissions ----------------------------------------------------------------
    def submit_comment(self, body: str, *, quote: str) -> None:
        block = _YAML_BLOCK.search(body)
        if block is None:
            raise SubmissionError("`/cert submit` needs your answers in a fenced "
                                  "`` ```yaml `` block in the same comment",
                                  hint="copy the YAML from your exam comment and fill it in")
        self._submit(block.group(1), source=f"comment {self.url or self.trigger}",
                     level_from_path=None)

    def submit_file(self, path: str, head_sha: str) -> None:
        prefix = self.section["submissions_dir"].rstrip("/") + "/"
        parts = path.removeprefix(prefix).split("/")
        if len(parts) != 2 or parts[0].lower() != self.login.lower():
            raise SubmissionError(
                f"{path}: a submission must be {prefix}{self.login}/<level>.yml — you can "
                f"only submit in your own folder")
        level_id = parts[1].removesuffix(".yml").removesuffix(".yaml")
        if level_id == parts[1]:
            raise SubmissionError(f"{path}: a submission is a .yml file named after the level")
        content = self.gh.get_file(path, ref=head_sha)
        if content is None:
            raise SubmissionError(f"{path}: the file could not be read at {head_sha[:7]}")
        self._submit(content.text, source=path, level_from_path=level_id)

    def _submit(self, text: str, *, source: str, level_from_path: str | None) -> None:
        located = load_document(text, kind="submission", source=source)
        data = located.data
        program = self.materials.program
        level_id = str(data["level"])
        if level_from_path is not None and level_from_path != level_id:
            raise SubmissionError(f"{source}: the file is named for '{level_from_path}' but "
                                  f"says level: {level_id}; make them the same")
        level = program.level(level_id)
        registry = self.materials.registry()
        attempts = registry.attempts_of(self.login, level.id)
        current = registry.open_attempt(self.login, level.id)
        wanted = data.get("attempt")
        if current is None:
            done = next((a for a in reversed(attempts)
                         if a.get("submission") == self._submission_ref()), None)
            if done is not None:
                if done.get("trigger") == self.trigger:
                    return  # a redelivery of the event that was graded: nothing changes
                raise SubmissionError(
                    f"attempt {done['attempt']} at {level.id} from this submission was already "
                    f"graded ({done['status']}, score {done.get('score')}); a new attempt "
                    f"needs `/cert request {level.id}`")
            raise SubmissionError(f"you have no open {level.id} exam; request one with "
                                  f"`/cert request {level.id}`")
        if wanted is not None and int(wanted) != int(current["attempt"]):
            raise SubmissionError(f"attempt: {wanted} is not your open attempt "
                                  f"({current['attempt']}); set attempt: {current['attempt']}")
        attempt = int(current["attempt"])
        if current["status"] == "reviewing":
            if current.get("submission") == self._submission_ref():
                self._review_status(level, current, registry)
                return
            raise SubmissionError(f"attempt {attempt} is already under review "
                                  f"(#{current.get('thread')}); it cannot be replaced")
        if level.exam_format == "multiple_choice":
            self._grade_mc(level, attempt, data)
        elif level.exam_format == "scenario_simulation":
            self._grade_scenario(level, attempt, data)
        else:
            self._start_review(level, attempt, data, registry)

    def _repo_url(self) -> str:
        repository = self.event.payload.get("repository") or {}
        url = repository.get("html_url")
        return str(url) if url else f"https://github.com/{self.gh.repo}"

    def _submission_ref(self) -> str:
        return f"#{self.number}"

    def _grade_mc(self, level: Level, attempt: int, data: dict[str, Any]) -> None:
        if not data.get("answers"):
            raise SubmissionError("answers: missing; a multiple-choice submission lists "
                                  "question id -> letter")
        bank = self.materials.bank(level.id)
        key = self._answer_key(level.id, bank)
        paper = draw_exam(bank, level, self.login, attempt, self.section["questions_per_module"])
        answers = {str(k): str(v) for k, v in data["answers"].items()}
        result = grade_multiple_choice(paper, answers, key, level)
        texts = {o.id: o.text for o in level.objectives}
        rows = [{"id": ", ".join(r.objectives),
                 "text": texts.get(r.label, r.label),
                 "result": f"{r.correct}/{r.total}"} for r in report_rows(result, level)]
        self._finish(level, attempt, result.score, result.passed, objectives=rows,
                     extra={"correct": result.correct, "questions": result.total})

    def _grade_scenario(self, level: Level, attempt: int, data: dict[str, Any]) -> None:
        rubric = self.materials.rubric(level.id)
        chosen = data.get("scenario") or data.get("assignment")
        assignment = rubric.assignment(str(chosen)) if chosen else None
        if assignment is None:
            ids = ", ".join(a.id for a in rubric.assignments)
            raise SubmissionError(f"scenario: choose one of {ids}"
                                  + (f" (got '{chosen}')" if chosen else ""))
        scenario = self.materials.scenario(assignment.scenario or assignment.id)
        plan = plan_from_submission(data, scenario)
        result = grade_scenario(scenario, plan, rubric)
        self._finish(level, attempt, result.score, result.score >= level.pass_score,
                     scenario=result, extra={"assignment": assignment.id})

    def _finish(self, level: Level, attempt: int, score: int, passed: bool, *,
                objectives: list[dict[str, Any]] | None = None, scenario: Any = None,
                extra: dict[str, Any] | None = None) -> None:
        record = {"login": self.login, "level": level.id, "attempt": attempt,
                  "status": "passed" if passed else "failed", "score": score,
                  "graded_at": iso(self.now), "submission": self._submission_ref(),
                  "trigger": self.trigger, "evidence": self.url, **(extra or {})}
        self._record(record, f"certification: {self.login} {record['status']} {level.id} "
                             f"attempt {attempt} ({score})")
        certificate, problem = (None, "")
        if passed:
            certificate, problem = self._issue(level, attempt, score)
        self._post_result(level, attempt, score, passed, objectives or [], scenario,
                          certificate, problem, graded=self.now)

    def _post_result(self, level: Level, attempt: int, score: int, passed: bool,
                     objectives: list[dict[str, Any]], scenario: Any, certificate: str | None,
                     problem: str, *, graded: datetime) -> None:
        marker = f"<!-- cvf:cert-result:{self.login.lower()}:{level.id}:{attempt} -->"
        cooldown = parse_duration(self.section["retake_cooldown"])
        body = render("certification/result.md", marker=marker, level=level, attempt=attempt,
                      candidate=mention(self.login), passed=passed, score=score,
                      objectives=objectives, scenario=scenario, certificate=certificate,
                      certificate_url=f"{self._repo_url()}/blob/{self.gh.default_branch()}/"
                                      f"{certificate}" if certificate else "",
                      certificate_problem=problem, retake_from=iso(graded + cooldown))
        self.gh.upsert_sticky_comment(self.number, marker, body)

    # -- reviewer grading -----------------------------------------------------------
    def _start_review(self, level: Level, attempt: int, data: dict[str, Any],
                      registry: Registry) -> None:
        rubric = self.materials.rubric(level.id)
        chosen = data.get("assignment")
        if not chosen or rubric.assignment(str(chosen)) is None:
            ids = ", ".join(a.id for a in rubric.assignments)
            raise SubmissionError(f"assignment: choose one of {ids}"
                                  + (f" (got '{chosen}')" if chosen else ""))
        if not data.get("work"):
            raise SubmissionError("work: list at least one link to your work")
        reviewers = self._eligible_reviewers(level, registry)
        required = self.section["reviewers"]["required"]
        if len(reviewers) < required:
            raise CvfError(f"not enough reviewers for {level.id}: {required} needed, "
                           f"{len(reviewers)} eligible",
                           hint="add holders of this level (or bootstrap reviewers) to "
                                "certification.reviewers in .github/cvf.yml")
        order = sorted(reviewers, key=lambda r: hashlib.sha256(
            f"{self.login}|{level.id}|{attempt}|{r}".encode()).hexdigest())
        record = {"login": self.login, "level": level.id, "attempt": attempt,
                  "status": "reviewing", "submission": self._submission_ref(),
                  "thread": self.number, "assignment": str(chosen),
                  "reviewers": order[:required], "evidence": self.url}
        self._record(record, f"certification: {self.login} {level.id} attempt {attempt} "
                             f"under review")
        self._review_status(level, record, registry)

    def _eligible_reviewers(self, level: Level, registry: Registry,
                            candidate: str | None = None) -> list[str]:
        """Pool members holding ``level`` or above, plus bootstrap reviewers; never the
        candidate (``self.login`` unless given)."""
        pool = self.section["reviewers"]
        program = self.materials.program
        candidate = candidate or self.login
        out = []
        for login in dict.fromkeys([*pool["pool"], *pool["bootstrap"]]):
            if login.lower() == candidate.lower():
                continue
            if login in pool["bootstrap"] or level.id in program.covered_by(
                    registry.held_levels(login, self.now)):
                out.append(login)
        return out

    def grade(self, body: str) -> None:
        registry = self.materials.registry()
        in_thread = [a for a in registry.attempts if a.get("thread") == self.number]
        if not in_thread:
            raise CvfError("there is no exam under review in this thread, so nothing to grade")
        attempt = in_thread[-1]
        if attempt["status"] != "reviewing":
            return  # already decided (or a redelivery of the deciding grade): nothing changes
        level = self.materials.program.level(attempt["level"])
        rubric = self.materials.rubric(level.id)
        grader = self.login
        if grader.lower() == str(attempt["login"]).lower():
            raise CvfError("you cannot grade your own exam")
        if grader not in self._eligible_reviewers(level, registry, str(attempt["login"])):
            raise CvfError(f"only reviewers holding {level.id} or above (from "
                           f"certification.reviewers) may grade this exam")
        parse_grade(find_grade_commands(body)[-1], rubric)  # a clear reply when malformed
        candidate_ctx = _Context(self.event, self.gh, str(attempt["login"]), self.number,
                                 self.trigger, str(attempt.get("evidence") or self.url),
                                 loaded=self.materials)
        candidate_ctx._review_status(level, attempt, registry)

    def _review_status(self, level: Level, attempt: dict[str, Any], registry: Registry) -> None:
        rubric = self.materials.rubric(level.id)
        settings = self.section["reviewers"]
        eligible = self._eligible_reviewers(level, registry)
        latest: dict[str, ReviewerGrade] = {}
        for comment in self.gh.list_issue_comments(self.number):
            if comment.author not in eligible or comment.author_is_bot:
                continue
            for args in find_grade_commands(comment.body):
                try:
                    scores = parse_grade(args, rubric)
                except CvfError:
                    continue
                latest[comment.author] = ReviewerGrade(comment.author, scores,
                                                       rubric.weighted(scores))
        result = consensus(list(latest.values()), required=settings["required"],
                           spread=settings["spread"])
        reviewers = list(attempt.get("reviewers") or [])
        if result.status == "disagree":
            extra = [r for r in eligible if r not in reviewers and r not in latest]
            if extra:
                reviewers.append(extra[0])
                self._record({**_key(attempt), "reviewers": reviewers},
                             f"certification: another reviewer for {attempt['login']}")
        status = {"waiting": f"waiting for grades ({len(latest)} of {settings['required']})",
                  "disagree": "reviewers disagree by more than the allowed spread; another "
                              "reviewer is asked to grade",
                  "agreed": f"agreed: {result.score}/100 from {', '.join(result.agreeing)}"}
        marker = f"<!-- cvf:cert-review:{str(attempt['login']).lower()}:{level.id}:" \
                 f"{attempt['attempt']} -->"
        body = render("certification/review.md", marker=marker, level=level,
                      attempt=attempt["attempt"], candidate=mention(str(attempt["login"])),
                      assignment=attempt.get("assignment", ""),
                      reviewers=[mention(r) for r in reviewers], required=settings["required"],
                      spread=settings["spread"], criteria=rubric.criteria,
                      grades=sorted(latest.values(), key=lambda g: g.reviewer),
                      status=status[result.status])
        self.gh.upsert_sticky_comment(self.number, marker, body)
        if result.status == "agreed" and result.score is not None:
            self._finish(level, int(attempt["attempt"]), result.score,
                         result.score >= level.pass_score,
                         extra={"reviewers": list(result.agreeing)})

    # -- records and certificates ---------------------------------------------------
    def _record(self, attempt: dict[str, Any], message: str) -> None:
        self.gh.update_file(self.section["registry"], self.gh.default_branch(),
                            lambda old: with_attempt(old, attempt), message)

    def _answer_key(self, level_id: str, bank: Any) -> AnswerKey:
        found = configured_key_text(self.section)
        if found is None:
            raise CvfError("this exam cannot be graded yet: the answer key is not configured",
                           hint=f"a maintainer must set the {self.section['answer_key_env']} "
                                f"secret (or certification.answer_key_path); nothing was "
                                f"recorded, your attempt stays open")
        text, source = found
        try:
            return parse_answer_key(text, bank, source=source)
        except DocumentError:
            raise CvfError("the configured answer key does not match the question bank",
                           hint="a maintainer must fix the answer-key secret; nothing was "
                                "recorded") from None

    def _issue(self, level: Level, attempt: int, score: int) -> tuple[str | None, str]:
        registry = self.materials.registry()
        existing = next((c for c in registry.certificates
                         if c["login"].lower() == self.login.lower() and c["level"] == level.id
                         and c.get("attempt") == attempt), None)
        if existing is not None:
            return str(existing["file"]), ""
        pem = os.environ.get(self.section["signing_key_env"])
        if not pem:
            return None, (f"the {self.section['signing_key_env']} secret is not set; a "
                          f"maintainer can issue it with `cvf cert issue`")
        key = load_private_key(pem, source=f"${self.section['signing_key_env']}")
        validity = self.section["certificate_validity"]
        issuer = issuer_for(self.section, self.gh.repo)
        credential = sign_credential(build_credential(
            level, login=self.login, score=score, evidence=self.url or self._submission_ref(),
            issuer=issuer, issued=self.now, attempt=attempt,
            valid_for=parse_duration(validity) if validity else None), key, self.now)
        path = f"{self.section['certificates_dir'].rstrip('/')}/{self.login}-{level.id}-" \
               f"{attempt}.json"
        text = dump_credential(credential)
        branch = self.gh.default_branch()
        self.gh.update_file(path, branch, lambda old: old or text,
                            f"certification: {level.title} certificate for {self.login}")
        entry = {"id": credential["id"], "login": self.login, "level": level.id,
                 "attempt": attempt, "score": score, "issued": credential["validFrom"],
                 "valid_until": credential.get("validUntil"), "file": path,
                 "evidence": credential["evidence"][0]["id"]}
        self.gh.update_file(self.section["registry"], branch,
                            lambda old: with_certificate(old, entry),
                            f"certification: register {path}")
        return path, ""


def _key(attempt: dict[str, Any]) -> dict[str, Any]:
    return {"login": attempt["login"], "level": attempt["level"], "attempt": attempt["attempt"]}


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _materials(gh: GitHubPort, config: Config) -> Materials:
    def read(path: str) -> str | None:
        content = gh.get_file(path)
        return content.text if content is not None else None

    return Materials(section=config.section("certification"), read=read)


def _command_lines(body: str) -> list[str]:
    return [line.strip() for _, line in command_lines(body)
            if line.strip().lower().startswith("/cert")]


# -- gate adapters for the RFC and routing concerns ------------------------------------
def rfc_vote_check(config: Config, gh: GitHubPort, now: datetime | None = None
                   ) -> Callable[[str, str], bool]:
    """``check(login, rfc_type)``: whether a vote may be binding as far as certification goes
    (``certification.gates.rfc_votes``). Reads nothing when no RFC gate is configured."""
    if not config.section("certification")["gates"]["rfc_votes"]:
        return lambda login, rfc_type: True
    gate = _LazyGate(config, gh, now)
    return lambda login, rfc_type: gate.get().may_vote(login, rfc_type)


def routing_level_check(config: Config, gh: GitHubPort, now: datetime | None = None
                        ) -> Callable[[str, object], bool]:
    """``check(login, risk_level)`` for the routing gate's ``set_level_check`` seam
    (``certification.gates.routing_approvals``; ``risk_level`` is "R2" or a RiskLevel)."""
    if not config.section("certification")["gates"]["routing_approvals"]:
        return lambda login, level: True
    gate = _LazyGate(config, gh, now)
    return lambda login, level: gate.get().may_approve(login, str(level))


@dataclass
class _LazyGate:
    config: Config
    gh: GitHubPort
    now: datetime | None
    built: LevelGate | None = None

    def get(self) -> LevelGate:
        if self.built is None:
            self.built = level_gate(self.gh, self.config, self.now or utcnow())
        return self.built


def _install_routing_gate() -> None:
    """Plug the certification gate into the routing handler's seam when it is installed."""
    try:
        from bot.handlers import routing
    except ImportError:  # pragma: no cover - routing ships with the package
        return
    routing.set_level_check(routing_level_check)


_install_routing_gate()
