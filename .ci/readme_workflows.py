"""Write the README's copy-paste workflows to DIR/.github/workflows/ for zizmor and
check-jsonschema: what people copy must pass the same audit as the project's own files.

Usage: python3 .ci/readme_workflows.py README.md DIR   (prints how many it wrote)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def workflow_blocks(readme: str) -> list[str]:
    """Every ```yaml block that is a whole workflow (has `on:` and `jobs:` at the top)."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", readme, re.DOTALL | re.MULTILINE)
    return [b for b in blocks if re.search(r"^on:", b, re.M) and re.search(r"^jobs:", b, re.M)]


def main(readme: str, out: str) -> int:
    folder = Path(out) / ".github" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    blocks = workflow_blocks(Path(readme).read_text("utf-8"))
    for number, block in enumerate(blocks, start=1):
        (folder / f"readme-{number}.yml").write_text(block, encoding="utf-8")
    print(f"{len(blocks)} README workflows written to {folder}")
    return 0 if blocks else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
