"""`python -m maskinpaint_jax COMMAND ...`: the same as the `maskinpaint` command."""
from maskinpaint_jax import commands

commands.main()
