"""Multi-host start-up: `jax.distributed.initialize` when launched as several processes.

Three ways to launch, checked in this order:
1. Explicit flags: --coordinator_address host:port --num_processes N --process_id i.
2. SLURM (srun with several tasks): JAX's own cluster detection fills in all three.
3. Neither: a single process over its local devices; nothing is initialised.
"""

from __future__ import annotations

import os

import jax
from absl import flags, logging



def define_flags(fv: flags.FlagValues = flags.FLAGS):
  flags.DEFINE_string("coordinator_address", None,
                      "host:port of process 0, for multi-process runs.", flag_values=fv)
  flags.DEFINE_integer("num_processes", None, "Total number of processes.", flag_values=fv)
  flags.DEFINE_integer("process_id", None, "This process's index.", flag_values=fv)


def _slurm_multi_task() -> bool:
  return int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in os.environ


def initialize(f: flags.FlagValues = flags.FLAGS) -> None:
  """Initialises jax.distributed if this run is multi-process; idempotent. Reads the flags of
  define_flags()."""
  coordinator, num_processes, process_id = f.coordinator_address, f.num_processes, f.process_id
  explicit = coordinator is not None
  if not explicit and not _slurm_multi_task():
    return
  if jax.distributed.is_initialized():
    return
  # CPU devices of different processes talk over gloo (TCP); GPUs are unaffected (NCCL).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if explicit:
    if num_processes is None or process_id is None:
      raise ValueError("--coordinator_address needs --num_processes and --process_id")
    jax.distributed.initialize(coordinator, num_processes, process_id)
  else:
    jax.distributed.initialize()  # SLURM: JAX reads the SLURM_* environment
  logging.info("process %d of %d, %d local / %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())

