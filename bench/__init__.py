"""graphctl's benchmark suite: ``python -m bench`` runs every benchmark and
regenerates ``bench/RESULTS.md``; ``python -m bench.NAME`` runs one."""
