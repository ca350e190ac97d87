"""The static dashboard and the bot's comments in headless Chromium, as people see them.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped only when it is absent.
Screenshots land in ``tests/artifacts/`` (gitignored) for people to look at: the dashboard
(whole and each role), the rendered RFC status comment, routing report and a
certification reply.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.metrics.aggregate import dashboard, window
from bot.metrics.report import render_report
from bot.metrics.store import open_store
from tests.test_metrics_aggregate import FIXED, NOW, rec

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Measures what was drawn, after layout, and leaves the result in the DOM for --dump-dom.
PROBE = """<script>
addEventListener("load", function () {
  var charts = [].map.call(document.querySelectorAll("figure[data-chart]"), function (f) {
    var box = f.querySelector("svg").getBoundingClientRect();
    var bars = [].filter.call(f.querySelectorAll("rect.bar"), function (r) {
      var b = r.getBoundingClientRect(); return b.height > 0.5 && b.width > 0.5; }).length;
    var line = f.querySelector("polyline");
    return {name: f.dataset.chart, width: box.width, height: box.height,
            bars: bars, line: line ? line.getTotalLength() : 0};
  });
  var probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({charts: charts,
    pageWidth: document.documentElement.scrollWidth, viewport: innerWidth});
  document.body.appendChild(probe);
});
</script>"""


def chromium(*args: str) -> str:
    assert CHROMIUM is not None
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--allow-file-access-from-files",
                           "--virtual-time-budget=3000", *args],
                          capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_dashboard_renders_numbers_and_charts_on_a_phone(tmp_path: Path) -> None:
    store = open_store(":memory:")
    store.ingest_lines(FIXED)
    html = render_report(dashboard(store, window("1h", now=NOW)), "html")
    page = tmp_path / "dashboard.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = chromium("--window-size=390,844", "--dump-dom", page.as_uri())
    for metric, shown in [("total_executions", "5"), ("success_rate", "80.0%"),
                          ("error_rate", "20.0%"), ("audit_completeness", "80.0%"),
                          ("acceptance_rate", "33.3%"), ("median_time_to_approve", "25m"),
                          ("high_risk_success_rate", "66.7%")]:
        assert re.search(rf'data-metric="{metric}">{re.escape(shown)}<', dom), metric
    assert "a2 <span class=\"flag\">unhealthy</span>" in dom
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run: the page failed to load"
    probe = json.loads(found.group(1).replace("&quot;", '"'))
    charts = {c["name"]: c for c in probe["charts"]}
    executions = charts["Executions (errors in red)"]
    assert executions["width"] > 300 and executions["height"] > 80
    assert executions["bars"] == 5  # one bar per 5-minute step with executions
    assert charts["Average latency (ms)"]["line"] > 100
    assert charts["Risk levels"]["bars"] == 4
    assert probe["pageWidth"] <= probe["viewport"]  # nothing sticks out sideways
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "metrics-dashboard.png"
    shot.unlink(missing_ok=True)
    chromium("--window-size=390,1600", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 10_000


# Finds what a reader would call broken: text cut off or running into its neighbour.
LAYOUT_PROBE = """<script>
addEventListener("load", function () {
  var problems = [];
  [].forEach.call(document.querySelectorAll("svg"), function (svg) {
    var box = svg.getBoundingClientRect();
    [].forEach.call(svg.querySelectorAll("text"), function (t) {
      var b = t.getBoundingClientRect();
      if (b.left < box.left - 0.5 || b.right > box.right + 0.5 || b.top < box.top - 0.5
          || b.bottom > box.bottom + 0.5) { problems.push("axis label cut: " + t.textContent); }
    });
  });
  [].forEach.call(document.querySelectorAll(".hbar"), function (row) {
    var label = row.querySelector(".hbar-label"), track = row.querySelector(".hbar-track");
    if (label.scrollWidth > label.clientWidth + 1) {
      problems.push("clipped: " + label.textContent); }
    if (label.getBoundingClientRect().right > track.getBoundingClientRect().left + 0.5) {
      problems.push("overlaps its bar: " + label.textContent); }
  });
  var undefinedFigures = [].filter.call(document.querySelectorAll(".card .label, th[title]"),
    function (l) { return !l.title; }).length;
  var out = document.createElement("pre");
  out.id = "layout";
  out.style.display = "none";
  out.textContent = JSON.stringify({problems: problems, undefinedFigures: undefinedFigures,
    pageWidth: document.documentElement.scrollWidth, viewport: innerWidth});
  document.body.appendChild(out);
});
</script>"""

BIG = [
    *FIXED,
    rec("6", "2026-03-10T11:55:00.123456Z", "deploy", "a1", "R1", "approval_required", True,
        9408.1),
    rec("7", "2026-03-10T11:56:00.654321Z", "migrate", "a2", "R2", "human_intervention",
        False, 14720),
]


def _dashboard_page(tmp_path: Path, role: str | None) -> Path:
    store = open_store(":memory:")
    store.ingest_lines(BIG)
    html = render_report(dashboard(store, window("1h", now=NOW)), "html", role=role)
    page = tmp_path / f"dashboard-{role or 'all'}.html"
    page.write_text(html.replace("</body>", LAYOUT_PROBE + "</body>"), encoding="utf-8")
    return page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("role", ["executive", "operator", "compliance"])
@pytest.mark.parametrize("width", [390, 1200])
def test_each_role_reads_cleanly(tmp_path: Path, role: str, width: int) -> None:
    page = _dashboard_page(tmp_path, role)
    dom = chromium(f"--window-size={width},900", "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="layout"[^>]*>(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run: the page failed to load"
    layout = json.loads(found.group(1).replace("&quot;", '"'))
    assert layout["problems"] == []
    assert layout["undefinedFigures"] == 0
    assert layout["pageWidth"] <= layout["viewport"]
    figures = re.sub(r"<(style|script|svg)\b.*?</\1>", " ", dom, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", figures)
    assert not re.search(r"\d\d:\d\d:\d\d", text), "timestamps show seconds"
    assert ".123456" not in text and "T11:" not in text
    if role == "operator":
        # One unit in a row: every latency in ms, whole numbers.
        latencies = re.findall(r"[\d,.]+ (?:ms|s)\b", text)
        assert latencies and all(v.endswith(" ms") and "." not in v for v in latencies)
    percentages = re.findall(r"\d+(?:\.\d+)?%", text)  # figures; axis ticks are whole
    assert all(re.fullmatch(r"\d+\.\d%", p) for p in percentages), percentages
    if role == "executive":
        # Plain-language health comes first, before any alert or figure.
        main = dom[dom.index("<main>"):]
        assert main.index("data-health") < main.index("<h2")
        assert re.search(r"of 6 executions succeeded", text)
    if role == "compliance":
        assert "Approvals granted (of needed)" in text and "Approvals granted (of decided)" in text
        assert "What these figures mean" in text
    if width == 1200:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"dashboard-{role}.png"
        shot.unlink(missing_ok=True)
        chromium("--window-size=1200,1400", f"--screenshot={shot}", page.as_uri())
        assert shot.stat().st_size > 10_000


# -- comments, rendered as GitHub renders them ---------------------------------------------
COMMENT_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body {{ font: 14px/1.5 -apple-system, "Segoe UI", system-ui, sans-serif; color: #1f2328;
       margin: 0; padding: 16px; background: #fff; }}
.comment {{ max-width: 820px; border: 1px solid #d1d9e0; border-radius: 6px; }}
.head {{ background: #f6f8fa; border-bottom: 1px solid #d1d9e0; padding: 8px 16px;
        color: #59636e; }}
.body {{ padding: 4px 16px 12px; }}
code {{ background: #eff1f3; padding: .2em .4em; border-radius: 6px; font-size: 85%; }}
pre {{ background: #f6f8fa; padding: 12px; border-radius: 6px; }}
pre code {{ background: none; padding: 0; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #d1d9e0; padding: 4px 10px; }}
blockquote {{ margin: 0; padding: 0 1em; color: #59636e; border-left: .25em solid #d1d9e0; }}
h2, h3 {{ border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; }}
</style></head><body><div class="comment"><div class="head"><b>cvf-governance</b> bot
commented</div><div class="body">{body}</div></div></body></html>"""


def screenshot_comment(tmp_path: Path, name: str, markdown: str) -> Path:
    from tests.gfm import to_html
    page = tmp_path / f"{name}.html"
    page.write_text(COMMENT_PAGE.format(body=to_html(markdown)), encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    chromium("--window-size=880,1300", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 5_000
    return shot


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_comments_render_as_people_see_them(tmp_path: Path, monkeypatch) -> None:
    from datetime import timedelta

    from tests.fake_github import FakeGitHub
    from tests.gfm import literal_escapes
    from tests.test_cert_handler import BOT, PRIVATE, ROOT, answer_key_text, comment
    from tests.test_rfc_handlers import World
    from tests.test_routing_handler import deliver, open_pull, report

    w = World()
    w.opened()
    w.say("writer", "/rfc open")
    w.say("carol", "/rfc concern naming")
    w.react("alice", "+1")
    w.say("bob", "/vote approve looks right, see `docs/vocabulary.md`")
    w.tick(w.now + timedelta(days=15))
    refused = w.say("bob", "/rfc accept")
    status = w.status()
    (refusal,) = [r for r in w.replies() if f"cvf:rfc-reply:{refused}:" in r]
    (ended,) = [r for r in w.replies() if "comment period ended" in r]
    typo = w.say("writer", "/rfc acept")
    (did_you_mean,) = [r for r in w.replies() if f"cvf:rfc-reply:{typo}:" in r]

    gh = FakeGitHub(bot_login="cvf-governance[bot]")
    gh.set_team("octo-org", "release", ["rita"])
    gh.set_team("octo-org", "risk-board", ["boris"])
    open_pull(gh, {"src/app.py": "x", "setup.cfg": "y", ".github/workflows/ci.yml": "z"})
    deliver(gh, "pull_request", "opened")
    routing = report(gh)

    monkeypatch.setenv("CVF_CERT_ANSWER_KEY", answer_key_text())
    monkeypatch.setenv("CVF_CERT_SIGNING_KEY", PRIVATE.decode())
    cert = FakeGitHub(bot_login=BOT)
    for path in (ROOT / "certification").rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".json", ".pem"):
            cert.put_file(str(path.relative_to(ROOT)), path.read_text("utf-8"))
    cert.put_file("certification/registry.json", None)
    comment(cert, 3, "dave", "/cert submit")
    (cert_reply,) = [c.body for c in cert.bot_comments(3)]

    for name, body in [("comment-rfc-status", status), ("comment-rfc-refusal", refusal),
                       ("comment-rfc-period-ended", ended),
                       ("comment-rfc-did-you-mean", did_you_mean),
                       ("comment-routing-report", routing),
                       ("comment-certification-reply", cert_reply)]:
        assert literal_escapes(body) == [], name
        screenshot_comment(tmp_path, name, body)
