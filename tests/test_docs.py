"""Generated documentation stays generated: README results and the benchmark file writer."""

import json

from conftest import REPO
from maskinpaint_jax import bench, report


def test_readme_results_block_is_exactly_what_the_demo_results_generate():
  results = json.loads((REPO / "docs" / "demo_results.json").read_text())
  readme = (REPO / "README.md").read_text()
  block = readme.split(report.README_START)[1].split(report.README_END)[0]
  assert report.results_markdown(results) in block
  assert (REPO / "docs" / "images" / "demo_samples.png").stat().st_size > 10_000


def test_comparison_sentence_reports_the_sign_honestly():
  row = lambda hole: {"psnr_hole": hole}
  summary = {"all": {"ours_raw": row(14.0), "masked_input": row(8.0), "telea": row(15.0)}}
  text = report.comparison_sentence(summary)
  assert "+6.00 dB" in text and "1.00 dB below" in text


def test_benchmark_sections_are_replaced_not_duplicated(tmp_path, monkeypatch):
  monkeypatch.setattr(report, "machine", lambda: "test machine")
  path = tmp_path / "b.md"
  path.write_text("# Benchmarks\n\nintro stays\n")
  bench.write_section(str(path), "A", "first", "cmd a")
  bench.write_section(str(path), "B", "second", "cmd b")
  bench.write_section(str(path), "A", "third", "cmd a2")
  text = path.read_text()
  assert text.count("## A") == 1 and "third" in text and "first" not in text
  assert "## B" in text and "second" in text and "intro stays" in text
  assert text.index("## A") < text.index("## B")
