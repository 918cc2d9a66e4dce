"""Working memory written through the journal (``Tenant.wm_write``, tenantvec._engine.wmlog):
round trips, folding into LMDB, ordering with transactions, crashes (SIGKILL at random
points), read-only openers, bad input, export/import, compaction and verify."""

from __future__ import annotations

import hashlib
import logging
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import lmdb
import msgpack
import pytest

import tenantvec
from tenantvec._engine import wmlog
from tenantvec._engine.checksum import open_side
from tenantvec.errors import InvalidArgument, ReadOnlyStore, TenantInactive, TenantVecError

DIM = 4
HEADER = 16  # magic + generation: an empty journal


def journal(store: tenantvec.Store, tid: str = "acme") -> Path:
    return store.tenant_path(tid) / "wm.log"


def lmdb_wm(tdir: Path) -> tuple[dict[bytes, bytes], int]:
    """LMDB's wm table (values checked and unsealed) and the folded generation, read raw
    (the store must be closed)."""
    env = lmdb.open(str(tdir), max_dbs=16, readonly=True, lock=False)
    try:
        with env.begin() as txn:
            wm = env.open_db(b"wm", txn=txn, create=False)
            meta = env.open_db(b"meta", txn=txn, create=False)
            items = {bytes(k): open_side(bytes(v), "acme", "wm", bytes(k)) for k, v in txn.cursor(db=wm)}
            raw = txn.get(b"wm_folded", db=meta)
            return items, 0 if raw is None else msgpack.unpackb(raw)
    finally:
        env.close()


def header_generation(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == wmlog.JOURNAL_MAGIC
    return int.from_bytes(data[8:16], "little")


def crash_copy(root: Path, dest: Path) -> Path:
    """The store's files as a process kill would leave them (the writer idle, its journal
    not folded): copied while the writer has them open."""
    shutil.copytree(root, dest)
    return dest


# ---------------------------------------------------------------------------- basics
def test_round_trip_views_and_transactions_see_journaled_writes(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        assert t.wm_get(b"s1/goal") is None
        assert t.wm_items() == []
        t.wm_write([(b"s1/goal", b"ship it"), (b"s1/turn/1", b"hi"), (b"s2/x", b"other")])
        t.wm_write([(b"s1/turn/2", bytearray(b"there")), (b"s1/goal", None), (b"never", None)])  # type: ignore[list-item]
        t.wm_write([])  # nothing to do
        assert t.wm_get(b"s1/goal") is None
        assert t.wm_get(b"s1/turn/2") == b"there"
        assert t.wm_items(b"s1/") == [(b"s1/turn/1", b"hi"), (b"s1/turn/2", b"there")]
        assert t.wm_items() == [(b"s1/turn/1", b"hi"), (b"s1/turn/2", b"there"), (b"s2/x", b"other")]
        assert t.wm_items(b"\xff") == []
        t.wm_write([(b"\xff\xff", b"top"), (b"\xff\xfe", b"next")])
        assert t.wm_items(b"\xff") == [(b"\xff\xfe", b"next"), (b"\xff\xff", b"top")]
        assert t.wm_items(b"\xff\xff") == [(b"\xff\xff", b"top")]
        assert journal(store).stat().st_size > HEADER  # journaled, not folded
        with t.reading() as view:
            assert view.side("wm").get(b"s2/x") == b"other"
            assert view.side("wm").items(b"s1/turn/") == [(b"s1/turn/1", b"hi"), (b"s1/turn/2", b"there")]
        with t.transaction() as tx:
            assert tx.side("wm").get(b"s1/turn/1") == b"hi"
            tx.side("wm").put(b"s1/turn/3", b"from a transaction")
        assert t.wm_get(b"s1/turn/3") == b"from a transaction"


def test_fold_writes_the_mirror_into_lmdb_and_empties_the_journal(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        rng = random.Random(7)
        model: dict[bytes, bytes] = {}
        for _ in range(200):
            key = b"k%03d" % rng.randrange(60)
            value = None if rng.random() < 0.3 else rng.randbytes(rng.randrange(0, 300))
            t.wm_write([(key, value)])
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        assert t.wm_items() == sorted(model.items())
        t.flush()  # folds generation 1
        assert journal(store).stat().st_size == HEADER
        assert header_generation(journal(store)) == 2
        assert t.wm_items() == sorted(model.items())
        with t.transaction() as tx:  # reads LMDB
            assert tx.side("wm").items() == sorted(model.items())
        assert header_generation(journal(store)) == 3  # a transaction that used wm moves the generation on
        tdir = store.tenant_path("acme")
    items, folded = lmdb_wm(tdir)
    assert items == model
    assert folded == 2
    assert header_generation(tdir / "wm.log") == folded + 1


def test_a_transaction_orders_after_the_journal(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        t.wm_write([(b"s/note1", b"a"), (b"s/note2", b"b")])
        with t.transaction() as tx:  # a consolidation: deletes what was journaled before it
            assert tx.side("wm").get(b"s/note1") == b"a"
            assert tx.side("wm").delete(b"s/note1") is True
            tx.add([[1.0, 0, 0, 0]], ids=["m1"], documents=["note1"])
        assert journal(store).stat().st_size == HEADER
        t.wm_write([(b"s/note3", b"c")])
        assert t.wm_items(b"s/") == [(b"s/note2", b"b"), (b"s/note3", b"c")]
        t.wm_write([(b"s/note4", b"d")])

        def aborted() -> None:
            with t.transaction() as tx:
                tx.side("wm").delete(b"s/note4")
                raise RuntimeError("abort")

        with pytest.raises(RuntimeError):
            aborted()
        assert t.wm_get(b"s/note4") == b"d"  # the journal survives an aborted transaction
    with tenantvec.Store(tmp_path / "s") as store:
        t = store.tenant("acme")
        assert t.wm_items(b"s/") == [(b"s/note2", b"b"), (b"s/note3", b"c"), (b"s/note4", b"d")]
        assert t.count() == 1


def test_close_leaves_an_empty_journal_and_the_data_in_lmdb(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        t.wm_write([(b"a", b"1"), (b"b", b"2")])
        t.wm_write([(b"a", None)])
        tdir = store.tenant_path("acme")
    assert (tdir / "wm.log").stat().st_size == HEADER
    items, folded = lmdb_wm(tdir)
    assert items == {b"b": b"2"}
    assert header_generation(tdir / "wm.log") == folded + 1
    with tenantvec.Store(tmp_path / "s") as store:
        assert store.tenant("acme").wm_items() == [(b"b", b"2")]


def test_the_journal_folds_when_it_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wmlog, "FOLD_BYTES", 4096)
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        for i in range(40):
            t.wm_write([(b"k%02d" % i, b"x" * 500)])
            assert journal(store).stat().st_size < 4096 + 600
        assert len(t.wm_items()) == 40


def test_working_memory_counts_in_the_shards_memory(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        t.wm_get(b"k")  # the mirror is loaded (empty)
        before = store.stats().memory_bytes
        t.wm_write([(b"k%04d" % i, b"v" * 1000) for i in range(200)])
        assert store.stats().memory_bytes >= before + 200 * 1000


def test_concurrent_writes_and_transactions(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        errors: list[BaseException] = []

        def writer(w: int) -> None:
            try:
                for i in range(200):
                    t.wm_write([(b"w%d/%03d" % (w, i), b"%d" % i)])
            except BaseException as exc:
                errors.append(exc)

        def transactions() -> None:
            try:
                for i in range(20):
                    with t.transaction() as tx:
                        tx.side("wm").put(b"tx/%02d" % i, b"t")
                    assert t.wm_get(b"tx/%02d" % i) == b"t"
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        threads.append(threading.Thread(target=transactions))
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors
        assert len(t.wm_items()) == 3 * 200 + 20
    with tenantvec.Store(tmp_path / "s") as store:
        assert len(store.tenant("acme").wm_items()) == 3 * 200 + 20


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("ops", [
    b"key",
    "key",
    {b"k": b"v"},
    [(b"ok", b"v"), (b"k",)],
    [(b"ok", b"v"), (b"k", b"v", b"x")],
    [(b"ok", b"v"), ("k", b"v")],
    [(b"ok", b"v"), (b"", b"v")],
    [(b"ok", b"v"), (b"k" * 512, b"v")],
    [(b"ok", b"v"), (b"k", "text")],
    [(b"ok", b"v"), (b"k", 3)],
    [(b"ok", b"v"), b"kv"],
    (x for x in [(b"ok", b"v")]),
])
def test_bad_input_changes_nothing(tmp_path: Path, ops: object) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        t.wm_write([(b"keep", b"1")])
        size = journal(store).stat().st_size
        with pytest.raises(InvalidArgument, match="acme"):
            t.wm_write(ops)  # type: ignore[arg-type]
        assert journal(store).stat().st_size == size
        assert t.wm_items() == [(b"keep", b"1")]
        t.wm_write([(b"k" * 511, b"")])  # the limits themselves are fine
        assert t.wm_get(b"k" * 511) == b""
        for key in (b"", b"k" * 512, "k"):
            with pytest.raises(InvalidArgument):
                t.wm_get(key)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            t.wm_items("k")  # type: ignore[arg-type]


def test_inactive_tenant_and_read_only_store_refuse_writes(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        t.wm_write([(b"k", b"v")])
        store.deactivate("acme")
        with pytest.raises(TenantInactive):
            t.wm_write([(b"k", b"w")])
        with pytest.raises(TenantInactive):
            t.wm_get(b"k")
        store.activate("acme")
        assert t.wm_get(b"k") == b"v"
        with t.transaction(), pytest.raises(TenantVecError, match="holds a transaction"):
            t.wm_write([(b"k", b"w")])  # would wait for this thread's own transaction
    with tenantvec.Store(tmp_path / "s", readonly=True) as ro:
        t = ro.tenant("acme")
        with pytest.raises(ReadOnlyStore):
            t.wm_write([(b"k", b"w")])
        assert t.wm_get(b"k") == b"v"


# ---------------------------------------------------------------------------- crashes
CHILD = textwrap.dedent(
    """
    import sys
    import tenantvec

    root, start = sys.argv[1], int(sys.argv[2])

    def value(i, j):
        return (b"%d.%d|" % (i, j)) * ((1 + (i * 7 + j) % 2500) * (40 if i % 5 == 0 else 1))

    store = tenantvec.Store(root, dim=4)
    t = store.tenant("acme", create=True)
    print("ready", flush=True)
    i = start
    while True:
        ops = [(b"b%06d/%d" % (i, j), value(i, j)) for j in range(3)]
        ops += [(b"last/%06d" % i, b"x"), (b"last/%06d" % (i - 1), None)]
        if i % 7 == 3:
            with t.transaction() as tx:
                for k, v in ops:
                    if v is None:
                        tx.side("wm").delete(k)
                    else:
                        tx.side("wm").put(k, v)
        else:
            if i % 11 == 5:
                t.flush()
            t.wm_write(ops)
        print("A %d" % i, flush=True)
        i += 1
    """
)


def _value(i: int, j: int) -> bytes:
    return (b"%d.%d|" % (i, j)) * ((1 + (i * 7 + j) % 2500) * (40 if i % 5 == 0 else 1))


def _check_crash_state(t: tenantvec.Tenant, acked: int) -> int:
    """Every acknowledged batch is there and no batch is half applied; returns the last
    batch applied."""
    lasts = t.wm_items(b"last/")
    assert len(lasts) == 1, lasts
    last = int(lasts[0][0][5:])
    assert last >= acked
    items = dict(t.wm_items(b"b"))
    assert len(items) == 3 * (last + 1)  # no key of a batch after the last one
    for i in range(last + 1):
        for j in range(3):
            assert items[b"b%06d/%d" % (i, j)] == _value(i, j)
    return last


def test_sigkill_at_random_points_keeps_every_acknowledged_batch(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    root = tmp_path / "s"
    rng = random.Random(20240611)
    start = 0
    for _round in range(5):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(start)], stdout=subprocess.PIPE,
                                env=subprocess_env)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        want, lines = rng.randint(3, 120), list[bytes]()
        while len(lines) < want:
            line = proc.stdout.readline()
            assert line, "the writer died"
            lines.append(line)
        proc.send_signal(signal.SIGKILL)  # somewhere in the writes after the last line read
        lines += proc.stdout.read().splitlines(keepends=True)
        proc.wait()
        proc.stdout.close()
        acked = max(int(line.split()[1]) for line in lines if line.endswith(b"\n"))
        wm_log = root / "tenants" / "acme" / "wm.log"
        before = wm_log.read_bytes()
        with tenantvec.Store(root, readonly=True) as ro:  # reads the journal, changes nothing
            last = _check_crash_state(ro.tenant("acme"), acked)
        assert wm_log.read_bytes() == before
        start = last + 1  # the next writer recovers the journal as the kill left it
    with tenantvec.Store(root) as store:
        assert _check_crash_state(store.tenant("acme"), start - 1) == start - 1
        assert store.verify("acme").ok


def test_a_torn_tail_is_dropped_whole_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        t.wm_write([(b"a", b"1"), (b"b", b"2")])
        t.wm_write([(b"c", b"3"), (b"a", None)])
        crash = crash_copy(tmp_path / "s", tmp_path / "crash")
    wm_log = crash / "tenants" / "acme" / "wm.log"
    data = wm_log.read_bytes()
    wm_log.write_bytes(data[:-3])  # the last record was being written when the process died
    with tenantvec.Store(crash, readonly=True) as ro:
        assert ro.tenant("acme").wm_items() == [(b"a", b"1"), (b"b", b"2")]
        report = ro.verify("acme")
        assert report.ok
        assert any("wm.log" in note and "ignored" in note for note in report.notes)
    assert wm_log.read_bytes() == data[:-3]
    with caplog.at_level(logging.WARNING, logger="tenantvec"), tenantvec.Store(crash) as store:
        t = store.tenant("acme")
        assert t.wm_items() == [(b"a", b"1"), (b"b", b"2")]
        assert any("did not finish" in r.getMessage() for r in caplog.records)
        t.wm_write([(b"d", b"4")])  # appended after the cut, not after the torn bytes
    with tenantvec.Store(crash) as store:
        assert store.tenant("acme").wm_items() == [(b"a", b"1"), (b"b", b"2"), (b"d", b"4")]
        assert store.verify("acme").ok


def test_a_journal_folded_before_a_crash_does_not_resurrect_keys(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        t.wm_write([(b"s/note", b"staged"), (b"s/keep", b"k")])
        old = journal(store).read_bytes()  # generation G, not folded yet
        with t.transaction() as tx:  # folds G, then deletes the note
            tx.side("wm").delete(b"s/note")
        tdir = store.tenant_path("acme")
    (tdir / "wm.log").write_bytes(old)  # as if the process died between the commit and the rotation
    with tenantvec.Store(tmp_path / "s", readonly=True) as ro:
        assert ro.tenant("acme").wm_items(b"s/") == [(b"s/keep", b"k")]
    assert (tdir / "wm.log").read_bytes() == old
    with tenantvec.Store(tmp_path / "s") as store:
        t = store.tenant("acme")
        assert t.wm_items(b"s/") == [(b"s/keep", b"k")]
        assert journal(store).stat().st_size == HEADER  # replaced by an empty one
    items, _ = lmdb_wm(tdir)
    assert items == {b"s/keep": b"k"}


# ---------------------------------------------------------------------------- read-only openers
READER = textwrap.dedent(
    """
    import sys
    import tenantvec

    with tenantvec.Store(sys.argv[1], readonly=True) as ro:
        t = ro.tenant("acme")
        try:
            t.wm_write([(b"x", b"y")])
        except tenantvec.ReadOnlyStore:
            print("refused")
        items = t.wm_items()
        with t.reading() as view:
            assert view.side("wm").items() == items
            assert [view.side("wm").get(k) for k, _ in items] == [v for _, v in items]
        for k, v in items:
            print(k.hex(), v.hex())
    """
)


def test_a_read_only_process_sees_journaled_writes_and_changes_nothing(tmp_path: Path,
                                                                      subprocess_env: dict[str, str]) -> None:
    def read() -> list[str]:
        out = subprocess.run([sys.executable, "-c", READER, str(tmp_path / "s")], env=subprocess_env, check=True,
                             capture_output=True, text=True).stdout.splitlines()
        assert out[0] == "refused"
        return out[1:]

    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        t.wm_write([(b"a", b"1"), (b"b", b"2")])
        t.wm_write([(b"a", None), (b"c", b"3")])
        wm_log = journal(store)
        before = hashlib.sha256(wm_log.read_bytes()).hexdigest(), wm_log.stat().st_mtime_ns
        assert read() == [f"{b'b'.hex()} {b'2'.hex()}", f"{b'c'.hex()} {b'3'.hex()}"]
        assert (hashlib.sha256(wm_log.read_bytes()).hexdigest(), wm_log.stat().st_mtime_ns) == before
        t.flush()  # folded: the reader finds it in LMDB now
        t.wm_write([(b"d", b"4")])
        assert read() == [f"{k.hex()} {v.hex()}" for k, v in [(b"b", b"2"), (b"c", b"3"), (b"d", b"4")]]


# ---------------------------------------------------------------------------- maintenance
def test_export_import_and_compaction_keep_working_memory(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        t = store.create_tenant("acme")
        t.add([[1.0, 0, 0, 0], [0, 1.0, 0, 0]], ids=["a", "b"])
        t.wm_write([(b"s1/goal", b"ship"), (b"s1/turn", b"1")])
        report = store.export_tenant("acme", tmp_path / "acme.tvx")
        assert report.working_memory == 2
        store.import_tenant("copy", tmp_path / "acme.tvx")
        assert store.tenant("copy").wm_items() == t.wm_items()
        t.wm_write([(b"s1/turn", b"2"), (b"s1/goal", None)])
        t.delete(ids=["a"])
        t.compact()
        assert t.wm_items() == [(b"s1/turn", b"2")]
        t.wm_write([(b"s1/after", b"compaction")])
        assert t.wm_items() == [(b"s1/after", b"compaction"), (b"s1/turn", b"2")]
        crash = crash_copy(tmp_path / "s", tmp_path / "crash")  # a journal not folded yet
    with tenantvec.Store(tmp_path / "s") as store:
        assert store.tenant("acme").wm_items() == [(b"s1/after", b"compaction"), (b"s1/turn", b"2")]
        assert store.verify("acme").ok
    wm_log = crash / "tenants" / "acme" / "wm.log"
    before = wm_log.read_bytes()
    assert len(before) > HEADER
    with tenantvec.Store(crash, readonly=True) as ro:  # a read-only export includes the journal
        assert ro.export_tenant("acme", tmp_path / "ro.tvx").working_memory == 2
    assert wm_log.read_bytes() == before
    with tenantvec.Store(tmp_path / "other", dim=DIM) as other:
        t2 = other.import_tenant("acme", tmp_path / "ro.tvx")
        assert t2.wm_items() == [(b"s1/after", b"compaction"), (b"s1/turn", b"2")]


def test_verify_folds_a_crashed_journal_in_a_writable_store(tmp_path: Path) -> None:
    with tenantvec.Store(tmp_path / "s", dim=DIM) as store:
        store.create_tenant("acme").wm_write([(b"k", b"v")])
        crash = crash_copy(tmp_path / "s", tmp_path / "crash")
    with tenantvec.Store(crash) as store:
        report = store.verify("acme")  # the tenant is cold: verify folds the journal itself
        assert report.ok
        assert (store.tenant_path("acme") / "wm.log").stat().st_size == HEADER
        assert store.tenant("acme").wm_get(b"k") == b"v"
        store.drop_tenant("acme")
        assert not store.tenant_path("acme").exists()
