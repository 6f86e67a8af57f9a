"""The reliability suite (issue 5): crash, concurrency, tamper, bundle mutation, write
attacks, key files and disk space. Each part is a module with a ``run_*`` function
that returns counts; the tests here call them at small counts, and bench/torture.py
at full counts (docs/reliability.md)."""
