"""Killed read-only processes must not fill LMDB's reader table.

Every process reading an LMDB environment takes a slot in its lock file's reader table
and gives it back when the read ends; a process killed mid-read leaves its slot behind.
After enough kills (about 126) a long-running writer could no longer begin a read
(``lmdb.ReadersFullError`` from its own ``get()``). tenantvec clears the slots of dead
processes when it opens an environment and whenever a reader slot cannot be had.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np

import tenantvec

DIM = 4

#: Forks ``n`` readers that each begin a read transaction on the tenant's raw LMDB
#: environment (as a killed CLI or follower would hold one), then SIGKILLs them all.
KILLER = textwrap.dedent(
    """
    import os, signal, sys, time
    import lmdb
    path, n = sys.argv[1], int(sys.argv[2])
    pids, held = [], 0
    for _ in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                env = lmdb.open(path, readonly=True, create=False, max_dbs=8, lock=True)
                txn = env.begin()
                os.write(w, b"1")
            except lmdb.Error:
                os.write(w, b"0")
            time.sleep(60)
            os._exit(0)
        os.close(w)
        held += os.read(r, 1) == b"1"
        os.close(r)
        pids.append(pid)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    print(held)
    """
)


def test_killed_readers_do_not_starve_the_writer(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    store = tenantvec.Store(tmp_path, dim=DIM, flush_interval=0)
    t = store.create_tenant("a")
    t.add(np.ones((3, DIM), np.float32), ids=["x", "y", "z"])
    path = str(tmp_path / "tenants" / "a")
    proc = subprocess.run([sys.executable, "-c", KILLER, path, "260"], capture_output=True, text=True,
                          env=subprocess_env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    held = int(proc.stdout.strip())
    assert 120 <= held < 260, f"{held} of 260 readers held a slot: the table was not filled"
    # the table is full of dead readers' slots; the writer's own reads still work, also
    # from threads that never read before (each needs a slot of its own)
    got: list[object] = []

    def read() -> None:
        try:
            got.append([r.id for r in t.get()])
        except BaseException as exc:
            got.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert got == [["x", "y", "z"]] * 4
    assert [r.id for r in t.get()] == ["x", "y", "z"]
    assert t.count() == 3
    t.add(np.ones((1, DIM), np.float32), ids=["w"])
    assert len(t.query(np.ones(DIM, np.float32), k=10)) == 4
    store.close()
    # and so do a fresh writer and a read-only opener after more kills
    subprocess.run([sys.executable, "-c", KILLER, path, "260"], check=True, capture_output=True,
                   env=subprocess_env, timeout=120)
    with tenantvec.Store(tmp_path, readonly=True) as ro:
        assert ro.tenant("a").count() == 4
        assert ro.verify("a").ok
