"""tenantvec benchmark runner (not collected by pytest).

Run ``python -m benchmarks`` (or ``python benchmarks/run.py``) from the repository root;
``--quick`` for a small smoke run, ``--only query,cold`` for some sections, ``--out PATH``
for where the markdown results go (default ``benchmarks/RESULTS.md``).
"""
