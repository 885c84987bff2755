r"""Top XLA ops by time from a `jax.profiler.trace` folder, without TensorBoard or XProf
(`maskinpaint profiling DIR` prints them; `bench` and `gpu_check` put them in their reports).

`jax.profiler.trace(dir)` writes dir/plugins/profile/<run>/<host>.trace.json.gz next to the
.xplane.pb (Chrome trace-event JSON), with no extra package. An executed op is a complete event
("ph": "X"): on a GPU on the "/device:..." rows (kernels, named by their HLO op where the trace
says it), on the CPU on the host's threads with its HLO op in args["hlo_op"]. Times are summed
by op, and by op kind (the name without its ".N" suffix), over the newest trace in the folder.
"""

from __future__ import annotations

import collections
import gzip
import json
import pathlib
import re



def newest_trace(log_dir) -> pathlib.Path:
  """The newest <host>.trace.json.gz under `log_dir` (a trace folder or one of its runs)."""
  traces = sorted(pathlib.Path(log_dir).rglob("*.trace.json.gz"), key=lambda p: p.stat().st_mtime)
  if not traces:
    raise FileNotFoundError(f"no *.trace.json.gz under {log_dir}")
  return traces[-1]


def _row_names(events: list[dict]) -> tuple[dict, dict]:
  """({pid: process name}, {(pid, tid): thread name}) from the trace's metadata events."""
  procs, threads = {}, {}
  for e in events:
    if e.get("ph") == "M" and e.get("name") == "process_name":
      procs[e["pid"]] = e.get("args", {}).get("name", "")
    elif e.get("ph") == "M" and e.get("name") == "thread_name":
      threads[(e["pid"], e.get("tid"))] = e.get("args", {}).get("name", "")
  return procs, threads


def op_events(trace: dict) -> tuple[list[tuple[str, float, str]], str]:
  """([(op name, microseconds, program name)], where they came from). Device rows win over the
  host, so a GPU kernel is not counted again under the host thread that launched it: a device's
  "XLA Ops" row if it has one (one event per op), else its kernels named by their HLO op where
  the trace says it (else by kernel name), never its "XLA Modules" / "Steps" spans. Without
  device rows (the CPU), the host threads' events that name an HLO op."""
  events = [e for e in trace.get("traceEvents", []) if isinstance(e, dict)]
  procs, threads = _row_names(events)
  timed = [e for e in events if e.get("ph") == "X" and e.get("dur", 0) > 0]
  device = [e for e in timed if procs.get(e.get("pid"), "").startswith("/device:")]
  row = lambda e: threads.get((e.get("pid"), e.get("tid")), "")
  as_op = lambda e, name: (name, float(e["dur"]), e.get("args", {}).get("hlo_module", ""))
  xla_ops = [e for e in device if row(e) == "XLA Ops"]
  if xla_ops:
    return [as_op(e, e.get("args", {}).get("hlo_op", e["name"])) for e in xla_ops], \
        "device XLA Ops rows"
  kernels = [e for e in device if row(e) not in ("XLA Modules", "Steps", "Framework Ops",
                                                 "Framework Name Scope", "Source code")]
  if kernels:
    return [as_op(e, e.get("args", {}).get("hlo_op", e["name"])) for e in kernels], \
        "device kernels"
  host = [e for e in timed if "hlo_op" in e.get("args", {})]
  return [as_op(e, e["args"]["hlo_op"]) for e in host], "host threads"


def op_kind(name: str) -> str:
  """'loop_add_fusion.12' -> 'loop_add_fusion', 'convolution.3' -> 'convolution'."""
  return re.sub(r"(\.\d+)+$", "", name)


def summarize(ops: list[tuple[str, float, str]], module: str | None = None,
              top: int = 15) -> dict:
  """{"total_ms", "ops": [...], "kinds": [...]}: each entry name, ms, share of the total, calls;
  `module` keeps only ops of programs whose name contains it (e.g. "train_step"), if any."""
  if module:
    ops = [o for o in ops if module in o[2]] or ops
  totals = {"ops": collections.Counter(), "kinds": collections.Counter()}
  calls = {"ops": collections.Counter(), "kinds": collections.Counter()}
  for name, us, _ in ops:
    for key, k in (("ops", name), ("kinds", op_kind(name))):
      totals[key][k] += us
      calls[key][k] += 1
  total = sum(totals["ops"].values())
  table = lambda key: [dict(name=n, ms=us / 1e3, share=us / total if total else 0.0,
                            count=calls[key][n]) for n, us in totals[key].most_common(top)]
  return dict(total_ms=total / 1e3, ops=table("ops"), kinds=table("kinds"))


def top_ops(log_dir, module: str | None = None, top: int = 15) -> dict:
  """summarize() of the newest trace under `log_dir`, with its path and the rows it read."""
  path = newest_trace(log_dir)
  with gzip.open(path, "rt") as f:
    ops, source = op_events(json.load(f))
  return dict(trace=str(path), source=source, **summarize(ops, module, top))


def markdown(summary: dict) -> str:
  """Two tables: the top ops, then the top op kinds (the same time grouped by name stem)."""
  lines = [f"XLA op time in the profiled step: {summary['total_ms']:.2f} ms in all, from the "
           f"{summary.get('source', 'trace')} (summed over devices and threads or streams: "
           "ops that overlap count twice).", ""]
  for title, key in (("op", "ops"), ("op kind", "kinds")):
    lines += [f"| {title} | ms | share | calls |", "|---|---:|---:|---:|"]
    lines += [f"| `{r['name']}` | {r['ms']:.3f} | {100 * r['share']:.1f} % | {r['count']} |"
              for r in summary[key]]
    lines.append("")
  return "\n".join(lines).rstrip("\n")
