"""README's Python example runs as written, on the shipped models (slow tier)."""

import re

import pytest

from conftest import REPO


@pytest.mark.slow
def test_the_readme_api_example_runs(capsys, monkeypatch):
  text = (REPO / "README.md").read_text()
  block = re.search(r"<!-- api-example[^>]*-->\n```python\n(.*?)```", text, re.S).group(1)
  monkeypatch.chdir(REPO)
  namespace = {}
  exec(compile(block, "README.md", "exec"), namespace)  # pylint: disable=exec-used
  result = namespace["result"]
  assert result.restored.shape == (1137, 910, 3)
  assert result.hole.sum() > 5000 and result.count("restored") == 1
  assert "face 1 of 1" in capsys.readouterr().out
