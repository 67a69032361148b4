"""Executors run a recipe's stages into a run directory: `base` (what they share), `local` (in this
process) and `ray` (Ray Data actor pools). `cpqa build --executor NAME` picks one from the
EXECUTORS registry."""
