"""Consolidation kill campaign: SIGKILL a process in the middle of agent-memory
consolidation, again and again; check that every note is consolidated exactly once, all
or nothing per tenant, and never into another tenant.

Run from the repository root::

    .venv/bin/python tools/consolidation_kills.py --kills 1000 --seed 7 --out consolidation_kills.json

It prints a summary table at the end and writes every counter, with up to three concrete
examples of each kind of failure (seed, round, tenant, note, what was expected), to
``--out``. Issue 12's target is 0 in every failure row.

One round:

* A **worker** child (forked by ``kill_campaign.ForkServer``) opens
  ``Memory(root, embedder=HashingEmbedder(64), durability="full")`` over five tenants and
  runs random steps: stage 1-4 notes in a session (``WorkingMemory.note``; new sessions
  and sessions of earlier rounds), ``TenantMemory.consolidate`` of one session (one with
  staged notes, or one without: a replay), and ``Memory.consolidate_many`` over 2-5
  (tenant, session) pairs of several tenants (a pair may repeat: the second is a replay;
  an unknown session must come back as an error report while the rest are done).
  Tenants ``p*`` consolidate with ``dedupe=None``; tenants ``d*`` with ``dedupe=0.05``, and
  some of their notes are exact repeats of a few facts, so consolidation reinforces the
  fact's one memory instead of adding a copy. Every distinct note's text names its
  tenant, session, round and number, plus random words (far apart for the embedder);
  its metadata ``tag`` is ``tenant/session/round.n``; a fact's text names its tenant.
* The worker reports to the parent over a FIFO, one JSON line per ``os.write``: ``n`` before
  a note, ``N`` when ``note`` returned (acknowledged), ``C`` before a consolidation (the
  pairs), ``T`` from inside its write transaction (the audit append, after the memories
  were added: the worker wraps ``tenantvec._audit.append``), ``R`` per report returned
  (ids, added, reinforced, audit seq, replayed, error) and ``E`` at its end.
* The parent kills it (``KILL_MODES``): at a random instant 0-0.4 s after it is ready; a
  random 20 us - 5 ms after the 1st-3rd ``C`` line (inside a consolidation: distill,
  embedding, dedupe search or the transaction); 0-1.5 ms after the 1st-3rd ``T`` line
  (after the adds, before or just after the commit); or early, while it opens the store.
* The parent then reopens the store in-process and compares it with the acknowledged
  history (model). Per note: an acknowledged note is staged in its session or in exactly
  one memory; a note begun but not acknowledged is in at most one place (then it is
  acknowledged from here on). Per session, the consolidated notes are a prefix of the
  staged order ending at a consolidation point (the transaction committed whole or not at
  all), the session's round counter equals its ``consolidate`` audit entries, whose note
  counts add up to the notes consolidated; every memory id is named by an audit entry and
  every audit id is a memory. Every acknowledged report's ids are the memories of its
  notes in order, and a replayed report repeats the last one. A fact has one memory whose
  reinforcement count is the number of its notes consolidated minus one. Each memory's
  text, tag and ``mem:session`` name the tenant and session it lives in. ``Store.verify``
  must pass (the audit chain included) for the tenants of the consolidation killed, and
  for every tenant every ``VERIFY_EVERY`` rounds and after a kill outside consolidation.
* Then the parent consolidates every session again (``replays_checked``): a session with
  staged notes gets exactly one memory per note, and a second call is a no-op returning
  the same ids (``replayed``); a session without returns its last report (this for every
  session the round touched, every session with staged notes and ``RETRY_OLDER`` others
  per tenant). The checks run again on the result. The next round continues on the same
  store (memories, sessions and audit logs accumulate) for ``--store-rounds`` rounds, or
  until a failure was found: then a fresh store starts, so one piece of damage is counted
  once.

Failures counted: ``lost`` (an acknowledged note neither staged nor a memory),
``duplicated`` (a note in two places, a memory text twice in a tenant),
``misplaced`` (a memory or staged note in a tenant or session its stamps do not name),
``unknown_memories`` (a memory no note explains), ``partial_consolidations`` (a session's
notes consolidated in part), ``audit_mismatches``, ``report_mismatches``,
``reinforcement_mismatches``, ``retry_failures`` (anything wrong after the retry),
``verify_failures``, ``worker_errors`` (an exception in the worker), ``worker_stuck``,
``checker_errors`` (an exception reopening or reading the store).
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kill_campaign import Child, ForkServer, Tally, campaign_parser, drive, parse_campaign_args, write_results

import tenantvec

#: The package the parent checks with and the workers run: the one ``import tenantvec`` finds.
LIB = Path(tenantvec.__file__).resolve().parent.parent

#: Tenants and the ``dedupe`` they consolidate with (``d*`` also stage repeated facts).
TENANTS: dict[str, float | None] = {"p0": None, "p1": None, "p2": None, "d0": 0.05, "d1": 0.05}
DIM = 64
FACTS = 6  # repeated facts per dedupe tenant
FACT_SHARE = 0.35  # of a dedupe tenant's notes
NOSUCH = "no-such-session"
KINDS = ("episodic", "semantic", "procedural")
SOURCES = ("user", "agent", "tool", "system")
WORDS = (
    "amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "jasper", "kettle",
    "lantern", "meadow", "nickel", "orchid", "pepper", "quartz", "raven", "saffron", "timber", "umber",
    "velvet", "walnut", "xenon", "yarrow", "zephyr", "anchor", "bramble", "copper", "dune", "falcon",
    "glacier", "hollow", "iris", "juniper", "kelp", "lichen", "marble", "nectar", "onyx", "pebble", "quill",
    "ridge", "sable", "thistle", "tundra", "violet", "willow", "yonder", "zinc", "acorn", "birch", "comet",
    "dahlia", "egret", "fennel", "geyser", "heron",
)
#: How a round's kill falls, with weights: "random" at a random instant after the worker is
#: ready; "consolidate" a random 20 us - 5 ms after a consolidation began; "in_tx" 0-1.5 ms
#: after a consolidation transaction appended its audit entry (memories added, not yet
#: committed); "early" while the worker opens the store.
KILL_MODES = {"random": 0.25, "consolidate": 0.4, "in_tx": 0.3, "early": 0.05}
READY_TIMEOUT = 60.0
WORKER_STEPS = 400  # then the worker waits to be killed
RETRY_OLDER = 3  # sessions of earlier rounds per tenant that a round's retry consolidates again
VERIFY_EVERY = 10  # rounds: Store.verify every tenant (else the tenants of the consolidation killed)
FAILURES = (
    "lost",
    "duplicated",
    "misplaced",
    "unknown_memories",
    "partial_consolidations",
    "audit_mismatches",
    "report_mismatches",
    "reinforcement_mismatches",
    "retry_failures",
    "verify_failures",
    "worker_errors",
    "worker_stuck",
    "checker_errors",
)


def fact_text(tenant: str, i: int) -> str:
    """The text of fact ``i`` of ``tenant`` (every note of it is exactly this)."""
    words = random.Random(f"{tenant}/fact{i}").sample(WORDS, 6)
    return f"{tenant} fact{i} " + " ".join(words)


# ---------------------------------------------------------------------------- worker
class Worker:
    """The child: stage notes and consolidate at random until killed (see the docstring)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        from tenantvec import _audit
        from tenantvec.embedders import HashingEmbedder
        from tenantvec.memory import Memory

        self.fd = os.open(cfg["fifo"], os.O_WRONLY)
        append = _audit.append

        def traced(table: Any, **kw: Any) -> Any:  # runs inside the consolidation's transaction
            if kw.get("op") == "consolidate":
                self.emit("T", kw.get("session"))
            return append(table, **kw)

        _audit.append = traced
        self.rng = random.Random(cfg["seed"])
        self.rnd = cfg["round"]
        self.mem = Memory(cfg["root"], embedder=HashingEmbedder(DIM), durability="full")
        self.tms = {t: self.mem.tenant(t, create=True) for t in TENANTS}
        self.sessions: dict[str, list[str]] = {t: list(cfg["sessions"].get(t, [])) for t in TENANTS}
        self.touched: list[tuple[str, str]] = []  # sessions staged into in this round
        self.facts: dict[tuple[str, str], set[int]] = {}  # facts staged since the session's last consolidation
        self.counter = 0

    def emit(self, *fields: Any) -> None:
        os.write(self.fd, (json.dumps(fields) + "\n").encode())

    def run(self) -> None:
        from tenantvec import TenantVecError

        self.emit("ready")
        for step in range(WORKER_STEPS):
            x = self.rng.random()
            try:
                if x < 0.5:
                    self.stage()
                elif x < 0.8:
                    self.consolidate_one(step)
                else:
                    self.consolidate_many(step)
            except TenantVecError as exc:
                self.emit("X", step, type(exc).__name__, traceback.format_exc()[-2000:])
                os._exit(3)
        self.emit("done")
        while True:
            signal.pause()

    def stage(self) -> None:
        """Stage 1-4 notes in a new session or an existing one."""
        rng = self.rng
        t = rng.choice(sorted(TENANTS))
        if self.sessions[t] and rng.random() < 0.4:
            s = rng.choice(self.sessions[t])
        else:
            s = f"s{self.rnd}_{self.counter}"
            self.sessions[t].append(s)
        wm = self.tms[t].session(s)
        self.touched.append((t, s))
        staged = self.facts.setdefault((t, s), set())
        for _ in range(rng.randint(1, 4)):
            self.counter += 1
            tag = f"{t}/{s}/{self.rnd}.{self.counter}"
            free = [i for i in range(FACTS) if i not in staged]
            fact = rng.choice(free) if TENANTS[t] is not None and free and rng.random() < FACT_SHARE else None
            if fact is None:
                text = f"{t} {s} r{self.rnd} n{self.counter} " + " ".join(rng.sample(WORDS, 4))
                kind = rng.choice(KINDS)
            else:
                staged.add(fact)
                text, kind = fact_text(t, fact), "semantic"
            self.emit("n", t, s, tag, text, fact)
            nid = wm.note(text, kind=kind, source=rng.choice(SOURCES), confidence=round(rng.random(), 3),
                          metadata={"tag": tag})
            self.emit("N", tag, nid)

    def _pick(self) -> tuple[str, str] | None:
        if self.touched and self.rng.random() < 0.85:
            return self.rng.choice(self.touched)
        known = [(t, s) for t in TENANTS for s in self.sessions[t]]
        return self.rng.choice(known) if known else None

    def _report(self, cid: int, rep: Any) -> None:
        self.emit("R", cid, rep.tenant, rep.session, list(rep.ids), list(rep.added), list(rep.reinforced),
                  rep.audit_seq, rep.replayed, rep.error)
        self.facts.pop((rep.tenant, rep.session), None)

    def consolidate_one(self, cid: int) -> None:
        pair = self._pick()
        if pair is None:
            return
        t, s = pair
        self.emit("C", cid, "one", [[t, s]])
        self._report(cid, self.tms[t].consolidate(s, dedupe=TENANTS[t]))
        self.emit("E", cid)

    def consolidate_many(self, cid: int) -> None:
        """2-5 pairs of one dedupe class (a pair may repeat), sometimes an unknown session."""
        rng = self.rng
        dedupe = rng.choice([None, 0.05])
        pool = [p for p in self.touched if TENANTS[p[0]] == dedupe] or [
            (t, s) for t in TENANTS if TENANTS[t] == dedupe for s in self.sessions[t]]
        if not pool:
            return
        pairs = [rng.choice(pool) for _ in range(rng.randint(2, 5))]
        if rng.random() < 0.15:
            pairs.insert(rng.randrange(len(pairs)), (pairs[0][0], NOSUCH))
        self.emit("C", cid, "many", [list(p) for p in pairs])
        for reps in self.mem.consolidate_many(pairs, dedupe=dedupe).values():
            for rep in reps:
                self._report(cid, rep)
        self.emit("E", cid)


def worker(cfg_path: str) -> None:
    """The worker child's entry point (``cfg_path``: its JSON config)."""
    Worker(json.loads(Path(cfg_path).read_text())).run()


WORKER_STUB = """\
import sys
sys.path.insert(0, {tools!r})
from consolidation_kills import worker
worker(sys.argv[1])
"""


# ---------------------------------------------------------------------------- the model
@dataclass
class NoteM:
    """A note the worker began to stage."""

    tag: str
    tenant: str
    session: str
    text: str
    fact: int | None
    acked: bool = False


@dataclass
class SessionM:
    """What is known of a session: its notes in staging order, how many of them are
    consolidated (a prefix), its committed consolidation rounds and the last one's ids."""

    notes: list[str] = field(default_factory=list)
    boundary: int = 0
    rounds: int = 0
    last_ids: tuple[str, ...] | None = None


@dataclass
class Inflight:
    """A consolidation begun in this round: its pairs and each session's note count then."""

    how: str
    pairs: list[tuple[str, str]]
    pos: dict[tuple[str, str], int]
    in_tx: int = 0  # T lines seen (transactions that reached their audit append)
    reported: int = 0


@dataclass
class Model:
    notes: dict[str, NoteM] = field(default_factory=dict)
    sessions: dict[tuple[str, str], SessionM] = field(default_factory=dict)

    def session(self, t: str, s: str) -> SessionM:
        return self.sessions.setdefault((t, s), SessionM())

    def sessions_of(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for t, s in self.sessions:
            out.setdefault(t, []).append(s)
        return out


@dataclass
class MemRow:
    id: str
    text: str
    tag: str | None
    session: str | None
    reinforced: int


@dataclass
class TenantState:
    """One tenant as the reopened store shows it."""

    memories: dict[str, MemRow]
    staged: dict[str, list[tuple[str, str, str | None, str | None]]]  # session -> (tag, text, tenant, session)
    rounds: dict[str, int]
    audit: list[Any]  # consolidate AuditEntry objects
    verify: tuple[bool, list[str]] = (True, [])


@dataclass
class Results(Tally):
    kinds = FAILURES
    width = 28

    @property
    def inside(self) -> int:
        """Kills that landed inside a consolidation (after its C line, before its E line)."""
        return sum(v for k, v in self.kill_phase.items() if k.startswith("inside"))

    def to_json(self) -> dict[str, Any]:
        return self._json({"kills": self.kills, "kills_inside_consolidation": self.inside},
                          {"kill_phase": dict(self.kill_phase.most_common())})

    def summary(self) -> str:
        i = self.info
        return self._summary(
            [f"consolidation kill campaign  seed={self.seed}  kills={self.kills}  inside consolidation="
             f"{self.inside}  rounds={self.rounds}  stores={self.stores}  time={self.elapsed:.0f}s "
             f"({self.per_100_kills:.1f}s per 100 kills)",
             f"notes acknowledged={i['notes_acked']}  consolidations acknowledged={i['reports_acked']}  "
             f"replays checked={i['replays_checked']}  memories at the end={i['memories_last_store']}"],
            ["kills landed: " + ", ".join(f"{k}={v}" for k, v in self.kill_phase.most_common()),
             "activity: " + ", ".join(f"{k}={v}" for k, v in sorted(i.items()))],
        )

    def progress(self, rnd: int) -> str:
        return (f"round {rnd:5d}  kills {self.kills:5d} (inside {self.inside})  failures "
                f"{sum(self.failures.values())} {self.failed()}  {self.elapsed:.0f}s")


# ---------------------------------------------------------------------------- the pipe
class Pipe:
    """The read end of the worker's FIFO, with a write end of our own held open so that a
    read never sees end-of-file (the worker's death is found by waiting on it)."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        self.buf = b""
        self.lines: list[list[Any]] = []

    def read(self, timeout: float) -> int:
        """Read what is there (waiting up to ``timeout`` for something); returns how many
        whole lines arrived."""
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0.0))
        if not ready:
            return 0
        n = len(self.lines)
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buf += chunk
        *whole, self.buf = self.buf.split(b"\n")
        self.lines.extend(json.loads(raw) for raw in whole if raw)
        return len(self.lines) - n

    def close(self) -> None:
        self.read(0)
        os.close(self.fd)
        os.close(self._keep)
        self.path.unlink()


# ---------------------------------------------------------------------------- the campaign
class Campaign:
    def __init__(self, workdir: Path, seed: int, *, store_rounds: int = 200, quiet: bool = False,
                 kill_modes: dict[str, float] | None = None) -> None:
        self.workdir, self.seed, self.quiet, self.store_rounds = workdir, seed, quiet, store_rounds
        self.rng = random.Random(seed)
        self.modes = kill_modes or KILL_MODES
        self.res = Results(seed)
        self.server = ForkServer(LIB)
        self.stub = workdir / "consolidation_worker.py"
        self.stub.write_text(WORKER_STUB.format(tools=str(Path(__file__).resolve().parent)))
        self.rnd = 0
        self._pending_reports: list[tuple[str, str, list[str], tuple[str, ...], int]] = []  # acked, checked on reopen
        self._touched: set[tuple[str, str]] = set()  # sessions the round's worker staged into or consolidated
        self._phase = ""  # where the round's kill landed
        self._new_store()

    def _new_store(self) -> None:
        self.store_round = 0
        self.res.stores += 1
        self.root = self.workdir / f"store{self.res.stores}"
        self.model = Model()

    def close(self) -> None:
        self.server.close()

    def _ex(self, what: str, **more: Any) -> dict[str, Any]:
        return {"seed": self.seed, "round": self.rnd, "store": self.res.stores, "what": what, **more}

    # ------------------------------------------------------------------ one round
    def round(self) -> None:
        self.rnd += 1
        res = self.res
        res.rounds += 1
        t0 = time.monotonic()
        rdir = self.workdir / "rounds"
        rdir.mkdir(exist_ok=True)
        pipe = Pipe(rdir / f"pipe{self.rnd}")
        cfg = {"root": str(self.root), "seed": self.rng.randrange(2**31), "round": self.rnd,
               "fifo": str(pipe.path), "sessions": self.model.sessions_of()}
        child = Child("worker", self.stub, cfg, rdir / "cfg.json", rdir / "worker.err", self.server)
        try:
            mode = self.rng.choices(list(self.modes), weights=list(self.modes.values()))[0]
            self._kill_when(mode, child, pipe)
        finally:
            if child.returncode is None:
                child.kill()
                child.wait()
            pipe.close()
        res.seconds["worker"] += time.monotonic() - t0
        if child.returncode == -signal.SIGKILL:
            res.kills += 1
        elif child.returncode != 0:
            res.fail("worker_errors", self._ex(f"worker exited with status {child.returncode}",
                                               stderr=child.stderr_tail(), lines=pipe.lines[-5:]))
        t1 = time.monotonic()
        before = sum(res.failures.values())
        inflight = self._replay_lines(pipe.lines)
        self._classify_kill(pipe.lines, inflight)
        try:
            self._check(inflight)
        except Exception as exc:  # a failure to reopen or read the store is a finding, not a crash
            res.fail("checker_errors", self._ex(f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()))
        res.seconds["check"] += time.monotonic() - t1
        self.store_round += 1
        damaged = sum(res.failures.values()) > before
        if damaged and not self.quiet:
            for kind, examples in res.examples.items():
                for e in examples:
                    if e["round"] == self.rnd:
                        print(f"round {self.rnd}: {kind}: {e['what']}", flush=True)
        if damaged or self.store_round >= self.store_rounds:  # after damage a fresh store: count it once
            self._new_store()

    def _kill_when(self, mode: str, child: Child, pipe: Pipe) -> None:
        """Kill the worker at the instant ``mode`` chooses (see ``KILL_MODES``)."""
        rng = self.rng
        if mode == "early":
            deadline = time.monotonic() + rng.uniform(0.0, 0.08)
            while time.monotonic() < deadline:
                pipe.read(deadline - time.monotonic())
            child.kill()
            child.wait()
            return
        if not self._wait_for(child, pipe, lambda line: line[0] == "ready", 1, READY_TIMEOUT):
            if child.wait(0) is None:
                self.res.fail("worker_stuck", self._ex(f"worker not ready after {READY_TIMEOUT:.0f} s",
                                                       stderr=child.stderr_tail()))
            return
        if mode == "random":
            deadline = time.monotonic() + rng.uniform(0.0, 0.4)
            while time.monotonic() < deadline and child.wait(0) is None:
                pipe.read(min(0.05, deadline - time.monotonic()))
        else:
            marker = "C" if mode == "consolidate" else "T"
            if not self._wait_for(child, pipe, lambda line: line[0] == marker, rng.randint(1, 3), 30.0):
                return
            delay = 10 ** rng.uniform(-4.7, -2.3) if mode == "consolidate" else rng.uniform(0.0, 0.0015)
            end = time.perf_counter() + delay
            while time.perf_counter() < end:  # busy: sleep() is too coarse for tens of microseconds
                pass
        child.kill()
        child.wait()

    @staticmethod
    def _wait_for(child: Child, pipe: Pipe, want: Any, nth: int, timeout: float) -> bool:
        """Read until the ``nth`` line matching ``want`` (False: the worker ended or timed out)."""
        seen = 0
        deadline = time.monotonic() + timeout
        pos = 0
        while time.monotonic() < deadline:
            pipe.read(0.05)
            for line in pipe.lines[pos:]:
                seen += want(line)
                if seen >= nth:
                    return True
                if line[0] == "done":
                    return False
            pos = len(pipe.lines)
            if child.wait(0) is not None:
                return False
        return False

    # ------------------------------------------------------------------ what the worker said
    def _replay_lines(self, lines: list[list[Any]]) -> Inflight | None:
        """Apply the worker's lines to the model; returns the consolidation in flight at the kill."""
        m, res = self.model, self.res
        flights: dict[int, Inflight] = {}
        last: Inflight | None = None
        self._touched = set()
        for line in lines:
            kind = line[0]
            if kind == "n":
                _, t, s, tag, text, fact = line
                m.notes[tag] = NoteM(tag, t, s, text, fact)
                m.session(t, s).notes.append(tag)
                self._touched.add((t, s))
            elif kind == "N":
                m.notes[line[1]].acked = True
                res.info["notes_acked"] += 1
            elif kind == "C":
                pairs = [(t, s) for t, s in line[3]]
                self._touched.update(pairs)
                last = flights[line[1]] = Inflight(line[2], pairs, {p: len(m.session(*p).notes) for p in pairs
                                                                    if p[1] != NOSUCH})
                res.info[f"consolidations_begun_{line[2]}"] += 1
            elif kind == "T" and last is not None:
                last.in_tx += 1
            elif kind == "R":
                self._on_report(flights[line[1]], line)
            elif kind == "E":
                flights.pop(line[1])
            elif kind == "X":
                res.fail("worker_errors", self._ex(f"step {line[1]} raised {line[2]}", traceback=line[3]))
        return next(iter(flights.values()), None)

    def _on_report(self, fl: Inflight, line: list[Any]) -> None:
        _, _cid, t, s, ids, added, reinforced, seq, replayed, error = line
        res = self.res
        fl.reported += 1
        if error is not None:
            if s == NOSUCH and error.startswith("SessionNotFound"):
                res.info["error_reports_expected"] += 1
            else:
                res.fail("report_mismatches", self._ex(f"{t}/{s}: consolidation failed: {error}"))
            return
        sm = self.model.session(t, s)
        batch = sm.notes[sm.boundary:fl.pos[(t, s)]]
        ids = tuple(ids)
        if replayed or not batch:
            res.info["replays_in_worker"] += bool(replayed)
            if batch:
                res.fail("report_mismatches", self._ex(f"{t}/{s}: {len(batch)} staged notes, report replayed"))
            elif replayed and sm.last_ids is not None and ids != sm.last_ids:
                res.fail("report_mismatches", self._ex(f"{t}/{s}: replay returned {ids}, the last round {sm.last_ids}"))
            elif not replayed and ids:
                res.fail("report_mismatches", self._ex(f"{t}/{s}: nothing staged, report names {ids}"))
            return
        res.info["reports_acked"] += 1
        if len(ids) != len(batch) or set(added) | set(reinforced) != set(ids):
            res.fail("report_mismatches", self._ex(f"{t}/{s}: {len(batch)} notes, report ids {ids}, added {added}, "
                                                   f"reinforced {reinforced}"))
        self._pending_reports.append((t, s, batch, ids, seq))
        sm.boundary, sm.rounds, sm.last_ids = fl.pos[(t, s)], sm.rounds + 1, ids

    def _classify_kill(self, lines: list[list[Any]], fl: Inflight | None) -> None:
        """Where the kill landed: while opening the store, outside any consolidation, or
        inside one (``inside_one``/``inside_many``): before a transaction of it reached its
        audit append, after (``_tx``: memories added, committed or not), or after it
        returned, while its reports were being sent (``_returned``)."""
        if fl is None:
            self._phase = "outside" if any(line[0] == "ready" for line in lines) else "opening"
        else:
            self._phase = f"inside_{fl.how}{'_returned' if fl.reported else '_tx' if fl.in_tx else ''}"
        self.res.kill_phase[self._phase] += 1

    # ------------------------------------------------------------------ the check
    def _check(self, fl: Inflight | None) -> None:
        from tenantvec.embedders import HashingEmbedder
        from tenantvec.memory import Memory

        pending, self._pending_reports = self._pending_reports, []
        secs = self.res.seconds
        t0 = time.monotonic()
        with Memory(self.root, embedder=HashingEmbedder(DIM), durability="full") as mem:
            t1 = time.monotonic()
            everything = self.store_round % VERIFY_EVERY == VERIFY_EVERY - 1
            state = read_state(mem, verify=set(TENANTS) if everything or fl is None else {t for t, _ in fl.pairs})
            t2 = time.monotonic()
            self._compare(state, fl, pending, after_retry=False)
            self._retry(mem)
            t3 = time.monotonic()
            state = read_state(mem, verify=set())
            self._compare(state, None, [], after_retry=True)
            self.res.info["memories_last_store"] = sum(len(s.memories) for s in state.values())
            t4 = time.monotonic()
        secs["check_open_close"] += t1 - t0 + time.monotonic() - t4
        secs["check_read_verify"] += t2 - t1
        secs["check_retry"] += t3 - t2
        secs["check_after_retry"] += t4 - t3

    def _compare(self, state: dict[str, TenantState], fl: Inflight | None,
                 reports: list[tuple[str, str, list[str], tuple[str, ...], int]], *, after_retry: bool) -> None:
        """Compare the store with the model; resolve unacknowledged notes and the
        consolidation in flight from what the store shows."""
        fails: list[tuple[str, str]] = []
        for t in TENANTS:
            st = state.get(t)
            if st is None:
                if any(n.acked for n in self.model.notes.values() if n.tenant == t):
                    fails.append(("lost", f"tenant {t} is missing"))
                continue
            fails += self._compare_tenant(t, st, fl)
        for t, s, batch, ids, seq in reports:
            fails += self._check_report(state[t], t, s, batch, ids, seq)
        for kind, what in fails:
            if after_retry:
                self.res.fail("retry_failures", self._ex(f"after the retry: {kind}: {what}"))
            else:
                self.res.fail(kind, self._ex(what))

    def _compare_tenant(self, t: str, st: TenantState, fl: Inflight | None) -> list[tuple[str, str]]:
        m = self.model
        fails = _stamps(t, st, m)
        staged_tags = Counter(tag for rows in st.staged.values() for tag, *_ in rows)
        mem_tags = Counter(r.tag for r in st.memories.values())
        fact_notes: dict[int, int] = Counter()
        for (tt, s), sm in list(m.sessions.items()):
            if tt != t:
                continue
            status = []
            for tag in list(sm.notes):
                n = m.notes[tag]
                where = _place(n, staged_tags[tag], mem_tags[tag], fails)
                if where is None:  # begun, never staged: gone from the model
                    sm.notes.remove(tag)
                    del m.notes[tag]
                    continue
                n.acked = True
                status.append(where)
                if where == "memory" and n.fact is not None:
                    fact_notes[n.fact] += 1
            fails += self._session_outcome(t, s, sm, status, st, fl)
        fails += _facts(t, st, fact_notes)
        fails += _audit_ids(t, st)
        if not st.verify[0]:
            fails.append(("verify_failures", f"Store.verify({t!r}): {st.verify[1]}"))
        return fails

    def _session_outcome(self, t: str, s: str, sm: SessionM, status: list[str], st: TenantState,
                         fl: Inflight | None) -> list[tuple[str, str]]:
        """All or nothing: the consolidated notes are a prefix ending at a consolidation
        point; the round counter and the audit entries agree with it."""
        fails = []
        b = status.count("memory")
        if status[:b] != ["memory"] * b:
            return [("partial_consolidations", f"{t}/{s}: notes in staging order are {status}")]
        points = {sm.boundary}
        inflight = fl is not None and (t, s) in fl.pos
        if inflight:
            points.add(fl.pos[(t, s)])
        if b not in points:
            fails.append(("partial_consolidations", f"{t}/{s}: {b} of {len(status)} notes consolidated; a "
                          f"consolidation took {sorted(points)}"))
        committed = b != sm.boundary
        if inflight:
            self.res.info[f"sessions_{self._phase}_{'committed' if committed else 'not_committed'}"] += 1
        rounds = sm.rounds + committed
        entries = [e for e in st.audit if e.session == s]
        if st.rounds.get(s, 0) != rounds or len(entries) != rounds:
            fails.append(("audit_mismatches", f"{t}/{s}: {rounds} consolidation rounds expected, the session "
                          f"says {st.rounds.get(s, 0)}, the audit log has {len(entries)}"))
        if sum(e.counts.get("notes", 0) for e in entries) != b:
            fails.append(("audit_mismatches", f"{t}/{s}: audit entries count "
                          f"{sum(e.counts.get('notes', 0) for e in entries)} notes, {b} were consolidated"))
        if committed:
            sm.rounds, sm.boundary, sm.last_ids = rounds, b, None
        sm.boundary = b  # after a checker retry: every note
        return fails

    def _check_report(self, st: TenantState, t: str, s: str, batch: list[str], ids: tuple[str, ...],
                      seq: int) -> list[tuple[str, str]]:
        """An acknowledged report's ids are its notes' memories, in order, and its audit entry names them."""
        fails = []
        for tag, mid in zip(batch, ids):
            n = self.model.notes.get(tag)
            row = st.memories.get(mid)
            want = n.text if n is not None else "?"
            if row is None or row.text != want or (n is not None and n.fact is None and row.tag != tag):
                fails.append(("report_mismatches", f"{t}/{s}: report id {mid} for note {tag} is "
                              f"{'missing' if row is None else repr(row.text)}, expected {want!r}"))
        entry = next((e for e in st.audit if e.seq == seq), None)
        if entry is None or entry.session != s or tuple(entry.ids) != tuple(dict.fromkeys(ids)):
            fails.append(("audit_mismatches", f"{t}/{s}: report audit seq {seq} names "
                          f"{None if entry is None else (entry.session, entry.ids)}, not {ids}"))
        return fails

    # ------------------------------------------------------------------ the retry
    def _retry(self, mem: Any) -> None:
        """Consolidate again (twice) every session the round staged into or consolidated,
        every session with staged notes and ``RETRY_OLDER`` other sessions per tenant: one
        memory per staged note, then a no-op returning the same ids."""
        from tenantvec.memory import ConsolidationReport

        res = self.res
        for t in TENANTS:
            try:
                tm = mem.tenant(t)
            except tenantvec.TenantNotFound:  # never created (killed while opening)
                continue
            infos = tm.sessions()
            older = [i for i in infos if (t, i.id) not in self._touched and not i.staged]
            chosen = {i.id for i in self.rng.sample(older, min(RETRY_OLDER, len(older)))}
            for info in infos:
                if (t, info.id) not in self._touched and not info.staged and info.id not in chosen:
                    continue
                s, sm = info.id, self.model.session(t, info.id)
                staged = [n.metadata.get("tag") for n in tm.session(s, create=False).staged()]
                first = tm.consolidate(s, dedupe=TENANTS[t])
                again = tm.consolidate(s, dedupe=TENANTS[t])
                res.info["replays_checked"] += 1
                if staged:
                    ok = not first.replayed and len(first.ids) == len(staged)
                    sm.rounds += 1
                    res.info["notes_consolidated_by_retry"] += len(staged)
                elif info.rounds:
                    ok = first.replayed and (sm.last_ids is None or first.ids == sm.last_ids)
                else:  # nothing ever staged: an empty report, never a replay
                    ok = first == again == ConsolidationReport(t, s)
                ok = ok and again.replayed == bool(info.rounds or staged) and again.ids == first.ids
                if not ok or again.audit_seq != first.audit_seq:
                    res.fail("retry_failures", self._ex(
                        f"{t}/{s}: {len(staged)} staged; retry gave {first}; the second call {again}"))
                sm.last_ids = first.ids if first.replayed or staged else None
                sm.boundary = len(sm.notes)


# ---------------------------------------------------------------------------- checks
def read_state(mem: Any, *, verify: set[str]) -> dict[str, TenantState]:
    """Every tenant's memories, staged notes, session rounds and consolidate audit entries,
    and what ``Store.verify`` says of the tenants in ``verify``."""
    out = {}
    for t in TENANTS:
        try:
            tm = mem.tenant(t)
        except tenantvec.TenantNotFound:
            continue
        memories = {}
        for r in tm.tenant.get(where={"mem:kind": {"$exists": True}}):
            md = r.metadata
            memories[r.id] = MemRow(r.id, r.document or "", md.get("tag"), md.get("mem:session"),
                                    md.get("mem:reinforced", 0))
        staged, rounds = {}, {}
        for info in tm.sessions():
            rounds[info.id] = info.rounds
            if info.staged:
                staged[info.id] = [(n.metadata.get("tag"), n.text, n.tenant, n.session)
                                   for n in tm.session(info.id, create=False).staged()]
        st = TenantState(memories, staged, rounds, tm.audit(ops=["consolidate"]))
        if t in verify:
            rep = mem.store.verify(t)
            st.verify = (rep.ok, list(rep.problems))
        out[t] = st
    return out


def _place(n: NoteM, staged: int, memories: int, fails: list[tuple[str, str]]) -> str | None:
    """Where a note is ("staged", "memory", or None: begun, never staged)."""
    if n.fact is not None:  # a fact's memory is checked per fact (_facts)
        if staged > 1:
            fails.append(("duplicated", f"note {n.tag} is staged {staged} times"))
        return "staged" if staged else ("memory" if n.acked else None)
    total = staged + memories
    if total > 1:
        fails.append(("duplicated", f"note {n.tag} ({n.text!r}) is staged {staged} times and in {memories} memories"))
    if total == 0:
        if n.acked:
            fails.append(("lost", f"acknowledged note {n.tag} ({n.text!r}) is neither staged nor a memory"))
        return None
    return "staged" if staged else "memory"


def _stamps(t: str, st: TenantState, m: Model) -> list[tuple[str, str]]:
    """Every memory and staged note of tenant ``t`` says it belongs there; texts are unique."""
    fails = []
    texts = Counter(r.text for r in st.memories.values())
    for text, n in texts.items():
        if n > 1:
            fails.append(("duplicated", f"tenant {t} holds {n} memories of {text!r}"))
    for r in st.memories.values():
        note = m.notes.get(r.tag or "")
        if note is None:
            fails.append(("unknown_memories", f"tenant {t} memory {r.id} ({r.text!r}, tag {r.tag!r}) explains no note"))
        elif r.text.split(" ", 1)[0] != t or note.tenant != t or note.session != r.session or note.text != r.text:
            fails.append(("misplaced", f"tenant {t} memory {r.id} {r.text!r} (tag {r.tag!r}, session {r.session!r}) "
                          f"is note {note.tenant}/{note.session} {note.text!r}"))
    for s, rows in st.staged.items():
        for tag, text, tenant, session in rows:
            note = m.notes.get(tag or "")
            if note is None:
                fails.append(("unknown_memories", f"tenant {t} session {s} stages an unknown note {tag!r} {text!r}"))
            elif (tenant, session, note.tenant, note.session, note.text) != (t, s, t, s, text):
                fails.append(("misplaced", f"tenant {t} session {s} stages {text!r} stamped {tenant}/{session}, "
                              f"note {note.tenant}/{note.session}"))
    return fails


def _facts(t: str, st: TenantState, consolidated: dict[int, int]) -> list[tuple[str, str]]:
    """Each fact: one memory once any note of it was consolidated, reinforced once per further note."""
    fails = []
    if TENANTS[t] is None:
        return fails
    by_text: dict[str, list[MemRow]] = {}
    for r in st.memories.values():
        by_text.setdefault(r.text, []).append(r)
    for i in range(FACTS):
        rows, c = by_text.get(fact_text(t, i), []), consolidated.get(i, 0)
        if c and not rows:
            fails.append(("lost", f"{t} fact{i}: {c} notes consolidated, no memory"))
        elif rows and not c:
            fails.append(("unknown_memories", f"{t} fact{i}: a memory, but no note of it consolidated"))
        elif len(rows) == 1 and rows[0].reinforced != c - 1:
            fails.append(("reinforcement_mismatches", f"{t} fact{i}: {c} notes consolidated, memory reinforced "
                          f"{rows[0].reinforced} times (expected {c - 1})"))
    return fails


def _audit_ids(t: str, st: TenantState) -> list[tuple[str, str]]:
    """Every memory was named by a consolidate audit entry, and every id named is a memory."""
    named = {i for e in st.audit for i in e.ids}
    fails = []
    if set(st.memories) - named:
        fails.append(("audit_mismatches", f"tenant {t}: memories {sorted(set(st.memories) - named)[:3]} have no "
                      "consolidate audit entry"))
    if named - set(st.memories):
        fails.append(("audit_mismatches", f"tenant {t}: audit entries name {sorted(named - set(st.memories))[:3]}, "
                      "which are no memories"))
    return fails


# ---------------------------------------------------------------------------- driver
def run_campaign(kills: int, seed: int, workdir: str | os.PathLike[str] | None = None, *, store_rounds: int = 200,
                 quiet: bool = False, keep: bool = False, kill_modes: dict[str, float] | None = None) -> Results:
    """Run rounds until ``kills`` SIGKILLs were delivered; returns the counters."""
    camp = drive(lambda wd: Campaign(wd, seed, store_rounds=store_rounds, quiet=quiet, kill_modes=kill_modes),
                 kills, workdir, prefix="tenantvec-consolidation-kills-", keep=keep, quiet=quiet, every=50)
    return camp.res


def main(argv: list[str] | None = None) -> int:
    ap = campaign_parser(__doc__, kills_help="SIGKILLs to deliver", out="consolidation_kills.json", store_rounds=200)
    args, modes, seed = parse_campaign_args(ap, argv, kill_modes=KILL_MODES, noun="modes",
                                            modes_help="weights of the kill modes, e.g. in_tx=1")
    print(f"consolidation kill campaign: {args.kills} kills, seed {seed}", flush=True)
    res = run_campaign(args.kills, seed, args.workdir, store_rounds=args.store_rounds, quiet=args.quiet,
                       keep=args.workdir is not None, kill_modes=modes)
    return write_results(res, args.out)


if __name__ == "__main__":
    sys.exit(main())
