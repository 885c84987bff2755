"""The model-variants notebook runs top to bottom on CPU."""

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO


@pytest.mark.slow
def test_model_variants_notebook_runs_top_to_bottom():
  nb = nbformat.read(REPO / "notebooks" / "model_variants.ipynb", as_version=4)
  # Executed in notebooks/ (its pictures there are git-ignored), as a user would open it.
  client = NotebookClient(nb, timeout=900, kernel_name="python3",
                          resources={"metadata": {"path": str(REPO / "notebooks")}})
  client.execute()
  text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", ""))
                   for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
  assert "| full |" in text and "| no_mmrm |" in text
  assert "no_mmrm: removes" in text
  errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]
  assert not errors
