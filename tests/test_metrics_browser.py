"""The static dashboard in headless Chromium: numbers and charts render, on a phone too.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped only when it is absent.
A screenshot is saved to ``tests/artifacts/metrics-dashboard.png`` for people to look at.
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
from tests.test_metrics_aggregate import FIXED, NOW

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
    for metric, shown in [("total_executions", "5"), ("success_rate", "80%"),
                          ("error_rate", "20%"), ("audit_completeness", "80%"),
                          ("acceptance_rate", "33.33%"), ("median_time_to_approve", "25m"),
                          ("high_risk_success_rate", "66.67%")]:
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
