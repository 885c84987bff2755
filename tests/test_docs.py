"""Generated documentation stays generated: README results and the benchmark file writer."""

import json

from conftest import REPO
from maskinpaint_jax import reporting


def test_readme_results_block_is_exactly_what_the_shipped_results_generate():
  results = json.loads((REPO / "docs" / "shipped_results.json").read_text())
  readme = (REPO / "README.md").read_text()
  block = readme.split(reporting.README_START)[1].split(reporting.README_END)[0]
  assert reporting.results_markdown(results) in block
  assert (REPO / "docs" / "images" / "demo_samples.png").stat().st_size > 10_000
  # The shipped model's own evaluation: its step is the one pretrained/ holds.
  manifest = json.loads((REPO / "pretrained" / "face_mask_64" / "manifest.json").read_text())
  assert results["meta"]["step"] == manifest["step"]


def test_comparison_sentence_reports_the_sign_honestly():
  row = lambda hole: {"psnr_hole": hole}
  summary = {"all": {"ours_raw": row(14.0), "masked_input": row(8.0), "telea": row(15.0)}}
  text = reporting.comparison_sentence(summary)
  assert "+6.00 dB" in text and "1.00 dB below" in text


def test_benchmark_sections_are_replaced_not_duplicated(tmp_path, monkeypatch):
  monkeypatch.setattr(reporting, "machine", lambda: "test machine")
  path = tmp_path / "b.md"
  path.write_text("# Benchmarks\n\nintro stays\n")
  reporting.write_section(str(path), "A", "first", "cmd a")
  reporting.write_section(str(path), "B", "second", "cmd b")
  reporting.write_section(str(path), "A", "third", "cmd a2")
  text = path.read_text()
  assert text.count("## A") == 1 and "third" in text and "first" not in text
  assert "## B" in text and "second" in text and "intro stays" in text
  assert text.index("## A") < text.index("## B")


def test_targets_are_checked_against_telea_on_the_same_images():
  s = lambda ours, telea, ssim=(80.0, 78.0): {
      "ours_raw": {"psnr_hole": ours}, "telea": {"psnr_hole": telea, "ssim": ssim[1]},
      "ours_composite": {"ssim": ssim[0]}}
  face = s(20.1, 16.0)
  face["ours_composite"]["lpips"], face["telea"]["lpips"] = 4.0, 9.0
  results = {"meta": {"step": 5, "split": "test"}, "datasets": {
      "face_mask_64": {"summary": {"all": face, "cloth": s(18.9, 16.0),
                                   "n95": s(19.1, 16.0)}},
      "rect_64": {"summary": {"all": s(18.9, 14.0)}}}}
  table = reporting.targets_markdown(results)
  rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[4:]}
  assert rows["face_mask_64: hole PSNR − Telea"].endswith("| +4.10 | yes |")
  assert rows["face_mask_64, cloth: hole PSNR − Telea"].endswith("| +2.90 | **no** |")
  assert rows["face_mask_64, n95: hole PSNR − Telea"].endswith("| +3.10 | yes |")
  # 4 / 9 = 0.44 of Telea's LPIPS: over the 0.40 wanted.
  assert rows["face_mask_64: composite LPIPS-Alex / Telea's"].endswith("| <= 0.40 | 0.44 | **no** |")
  assert rows["rect_64: hole PSNR − Telea"].endswith("| +4.90 | **no** |")
  assert "| +2.00 | yes |" in rows["face_mask_64: whole-image SSIM, ours composite vs Telea"]
