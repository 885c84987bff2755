"""The house's rules, checked on the source (fast tier: no imports executed, only parsed):
imports point one way and never in a circle, programs live in tools/, modules stay readable, and
the product speaks about itself, not about the process that made it."""

import ast
import pathlib
import re

import pytest

from conftest import REPO

PACKAGES = ("maskinpaint_jax", "data_prep")
MAX_LINES = 450


def module_name(path: pathlib.Path) -> str:
  name = ".".join(path.relative_to(REPO).with_suffix("").parts)
  return name.removesuffix(".__init__")


def project_modules() -> dict[str, pathlib.Path]:
  return {module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def imports_of(path: pathlib.Path, modules) -> set[str]:
  """Project modules that `path` imports, at the top or inside a function (a lazy import is an
  arrow like any other)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      # `from pkg import mod` is an arrow to pkg.mod; `from mod import name`, to mod.
      for a in node.names:
        sub = f"{node.module}.{a.name}"
        found.add(sub if sub in modules else node.module)
  return {m for m in found if m in modules} - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
  modules = project_modules()
  return {name: imports_of(path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One import circle of `graph` as [a, b, ..., a], or None (depth-first search)."""
  state, stack = {}, []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == "open":
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state and (cycle := visit(nxt)):
        return cycle
    state[node] = "done"
    stack.pop()
    return None

  for node in sorted(graph):
    if node not in state and (cycle := visit(node)):
      return cycle
  return None


def test_the_cycle_finder_finds_a_planted_circle():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circle_anywhere():
  cycle = find_cycle(import_graph())
  assert cycle is None, "import circle: " + " -> ".join(cycle)


def is_program(name: str) -> bool:
  return name.startswith("maskinpaint_jax.tools.")


# `python -m maskinpaint_jax.train` (the design card's command) and `python -m maskinpaint_jax`:
# thin entry points that hand over to `commands`, which runs the program by name.
ENTRY_POINTS = {"maskinpaint_jax.train": {"maskinpaint_jax.commands"},
                "maskinpaint_jax.__main__": {"maskinpaint_jax.commands"}}


@pytest.mark.parametrize("name, imports", sorted(import_graph().items()))
def test_no_program_imports_a_program(name, imports):
  """What two programs share lives in the library (photo sets, the restorer, profiling ...)."""
  if is_program(name):
    assert not [m for m in imports if is_program(m)], \
        f"{name} imports the program(s) {sorted(m for m in imports if is_program(m))}"


def test_entry_points_only_hand_over_to_commands():
  graph = import_graph()
  for name, allowed in ENTRY_POINTS.items():
    assert graph[name] == allowed, f"{name} imports {graph[name]}"


def exits_in(path: pathlib.Path) -> list[int]:
  """Lines of `path` that raise SystemExit or call sys.exit / os._exit / exit."""
  lines = []
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Raise) and node.exc is not None:
      target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
      if isinstance(target, ast.Name) and target.id == "SystemExit":
        lines.append(node.lineno)
    elif isinstance(node, ast.Call):
      f = node.func
      if (isinstance(f, ast.Attribute) and f.attr in ("exit", "_exit")
          and isinstance(f.value, ast.Name) and f.value.id in ("sys", "os")) or (
              isinstance(f, ast.Name) and f.id == "exit"):
        lines.append(node.lineno)
  return lines


def test_exits_in_planted_code_are_found(tmp_path):
  planted = tmp_path / "m.py"
  planted.write_text("import sys\ndef f():\n  raise SystemExit(3)\ndef g():\n  sys.exit(1)\n")
  assert exits_in(planted) == [3, 5]


# Where the process may end: the programs, and the two modules that run them and map the typed
# errors of errors.py to exit codes (cli.run) or dispatch the `maskinpaint` command.
EXIT_ALLOWED = {"maskinpaint_jax.cli", "maskinpaint_jax.commands"}


def test_the_library_raises_and_only_programs_exit():
  for name, path in project_modules().items():
    if is_program(name) or name in EXIT_ALLOWED:
      continue
    assert not exits_in(path), f"{name} ends the process at line(s) {exits_in(path)}: raise " \
        "a typed error of errors.py instead (cli.run maps it to an exit code)"


@pytest.mark.parametrize("name, imports", sorted(import_graph().items()))
def test_arrows_point_from_programs_to_the_library_never_back(name, imports):
  if is_program(name):
    return
  assert not [m for m in imports if is_program(m)], f"{name} imports a program"
  if name.startswith("maskinpaint_jax"):
    assert not [m for m in imports if m.startswith("data_prep")], \
        f"{name}: the library reads built datasets through input_pipeline, never data_prep"
  if name.startswith("maskinpaint_jax.faces"):
    allowed = ("maskinpaint_jax.faces", "maskinpaint_jax.masks", "maskinpaint_jax.images",
               "maskinpaint_jax.errors", "maskinpaint_jax.shipped", "maskinpaint_jax.programs")
    assert all(m.startswith(allowed) for m in imports), \
        f"{name}: the real-photo front end needs no model, training or evaluation code"


def test_programs_are_in_tools_and_only_there():
  for name, path in project_modules().items():
    runs = re.search(r'^if __name__ == "__main__":', path.read_text(), re.M) is not None
    if is_program(name):
      assert runs, f"{name} is in tools/ but is not a program"
    elif name not in ENTRY_POINTS:
      assert not runs, f"{name} is a program outside maskinpaint_jax/tools/"


def test_no_module_over_the_limit_without_a_reason_at_its_top():
  for name, path in project_modules().items():
    text = path.read_text()
    if len(text.splitlines()) > MAX_LINES:
      doc = ast.get_docstring(ast.parse(text)) or ""
      assert "Why one long module:" in doc, \
          f"{name} has {len(text.splitlines())} lines: split it, or say why at its top"


# The product describes itself; tickets, sessions and tools of the team that made it are not
# part of it.
PROCESS_WORDS = re.compile(r"\bissue ?#\d+|\bthe issue'?s?\b|\bissue:|\(issue\b|\bissues? \"|"
                           r"\bticket|"
                           r"\bthis session\b|in this session|\bthe device tool\b|"
                           r"device-tool|project's external check", re.I)


def product_files():
  for pattern in ("maskinpaint_jax/**/*.py", "data_prep/**/*.py", "configs/*.py", "launch/*",
                  "docs/*.md", "README.md", "CONTRIBUTING.md", "pretrained/**/*.md",
                  "sample_data/**/*.md", "Makefile", "notebooks/*.ipynb", "tests/*.py"):
    yield from (p for p in REPO.glob(pattern) if p.is_file() and p.name != "test_layout.py")


def test_the_product_speaks_about_itself_not_about_its_process():
  hits = [f"{p.relative_to(REPO)}:{i}: {line.strip()[:100]}"
          for p in product_files()
          for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
          if PROCESS_WORDS.search(line)]
  assert not hits, "\n".join(hits)


def test_paths_computed_from_a_modules_own_place_reach_the_repository():
  """`pathlib.Path(__file__).resolve().parents[N]` must land on the repository root (or below
  it): a module moved to another folder otherwise reads and writes in the wrong place."""
  pattern = re.compile(r"Path\(__file__\)\.resolve\(\)\.parents\[(\d)\]( / \"[^\"]+\")*")
  for name, path in project_modules().items():
    for m in pattern.finditer(path.read_text()):
      target = path.resolve().parents[int(m.group(1))]
      parts = re.findall(r'/ "([^"]+)"', m.group(0))
      if not parts:
        assert (target / "pyproject.toml").exists(), f"{name}: {m.group(0)} is not the repo"
      else:
        assert (target / parts[0]).exists(), f"{name}: {m.group(0)} does not exist"
