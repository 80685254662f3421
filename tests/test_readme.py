"""The README's Python example runs as written and prints what it claims."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, str(README), "exec"), namespace)
    plan = namespace["plan"]
    registers = namespace["registers"]
    assert plan.decode(registers) == {  # type: ignore[attr-defined]
        "speed": 1480,
        "temperature": 61.5,
        "flow": 12.5,
        "running": True,
        "serial": "P-101",
    }
