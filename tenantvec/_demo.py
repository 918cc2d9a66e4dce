"""``tenantvec demo``: the agent-memory tour on real text, in a few seconds and two screenfuls.

Three customers of a support agent (acme, globex, initech) each get their own long-term
memories (episodic, semantic, procedural; from users, the agent and tools), some of them
backdated through ``Memory(clock=...)`` so that "the last 90 days" means something. The tour
then runs a support session per tenant (working memory, staged notes, consolidation exactly
once, a near-duplicate reinforcing a memory), the seed's compound recall in one call, a
weighted recall with its explanation, supersede / history / ``as_of``, forget with a reason,
the audit log and its verified chain, isolation (another tenant's query and a ``distill``
that tries to write across tenants) and offboarding with its erasure record.

Text is embedded by the real local model (``OnnxEmbedder``: all-MiniLM-L6-v2 int8) when the
``[onnx]`` extra is installed, else by ``HashingEmbedder``; the first line says which and why.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Final

from .embedders import Embedder, EmbedderError, HashingEmbedder, OnnxEmbedder
from .errors import TenantExists, TenantMismatch
from .memory import AuditEntry, Memory, MemoryHit, Note

DAY: Final = 86400.0
ACTOR: Final = "support-agent"

OLD_FACT: Final = "Acme pays its invoices by bank transfer on net-60 terms"
CONTACT: Final = "Acme's billing contact is Dana Whitfield (dana@acme.example)"
GUESS: Final = "Acme probably pays its invoices late because its finance team is short-staffed"
DOUBLE_CHARGE: Final = "Dana reported that the March invoice was charged twice to the company card"

# (days ago, kind, source, confidence, text) per tenant, oldest first (the audit log's order).
SEED: Final[dict[str, list[tuple[int, str, str, float, str]]]] = {
    "acme": [
        (300, "episodic", "user", 1.0, "Acme's March invoice last year lacked its VAT number; support reissued it"),
        (200, "semantic", "user", 1.0, OLD_FACT),
        (60, "semantic", "user", 1.0, "Acme requires all of its data to stay in the EU (Frankfurt) region"),
        (45, "procedural", "user", 1.0, "Acme wants every refund confirmed in writing before a ticket is closed"),
        (34, "semantic", "user", 1.0, CONTACT),
        (21, "semantic", "user", 1.0, "Acme switched to paying its invoices by company credit card at the March renewal"),
        (15, "procedural", "agent", 0.8, "For Acme, answer billing questions by email and copy the billing contact"),
        (12, "semantic", "tool", 1.0, "Billing system: Acme is on the Enterprise plan, 40 seats, renewing on 1 March"),
        (6, "semantic", "agent", 0.6, GUESS),
        (4, "episodic", "user", 1.0, DOUBLE_CHARGE),
        (3, "episodic", "tool", 1.0, "The billing API refunded the duplicate March charge (ticket ACME-1042)"),
    ],
    "globex": [
        (150, "semantic", "user", 1.0, "Globex pays its invoices by cheque from its Springfield office"),
        (40, "semantic", "user", 1.0, "Globex wants every support reply written in German"),
        (30, "procedural", "user", 1.0, "Send Globex refund requests to their finance team for approval first"),
        (25, "semantic", "user", 1.0, "Globex pays its invoices by SEPA direct debit from its Munich account"),
        (10, "procedural", "agent", 0.7, "Globex tickets about the shipping API are best answered with a curl example"),
        (5, "semantic", "agent", 0.5, "Globex seems to be evaluating a competitor's shipping product"),
        (2, "episodic", "user", 1.0, "Globex asked for a refund of the February overage fee"),
    ],
    "initech": [
        (90, "semantic", "user", 1.0, "Initech runs the on-premises edition behind the proxy at proxy.initech.example"),
        (50, "procedural", "user", 1.0, "Call Initech's IT desk in the morning; afternoons go to voicemail"),
        (20, "semantic", "user", 1.0, "Initech pays its invoices by cheque, which the agent cannot process"),
        (8, "episodic", "user", 1.0, "Bill Lumbergh asked for the TPS report export to include the new cover sheet"),
        (1, "episodic", "tool", 1.0, "The nightly TPS export for Initech failed with a proxy timeout"),
    ],
}
NEW_CONTACT: Final = "Acme's billing contact is now Priya Raman (priya@acme.example); Dana moved to procurement"
QUERY: Final = "How does Acme pay its invoices?"
CONTACT_QUERY: Final = "Who is Acme's billing contact?"
WEIGHTED_QUERY: Final = "What went wrong with Acme's March invoice?"
DEDUPE: Final = 0.08  # cosine distance under which a note reinforces an existing memory instead of adding one
SESSION_TTL: Final = 3600.0


class DemoClock:
    """The memories' clock: the real time, or that many days earlier inside :meth:`back`."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() - self.offset

    @contextmanager
    def back(self, days: float) -> Iterator[None]:
        """Run the block as if it were ``days`` days ago."""
        self.offset = days * DAY
        try:
            yield
        finally:
            self.offset = 0.0


def choose_embedder(embeddings: str) -> tuple[Embedder, str]:
    """The embedder for ``--embeddings`` (auto | hashed | minilm) and a line saying why.

    :raises EmbedderError: ``minilm`` asked for and the ``[onnx]`` extra is not usable.
    """
    if embeddings == "hashed":
        return HashingEmbedder(), "asked for with --embeddings hashed"
    t0 = time.perf_counter()
    try:
        emb: Embedder = OnnxEmbedder()
    except EmbedderError as exc:
        if embeddings == "minilm":
            raise
        return HashingEmbedder(), f"the real model is not available: {exc}"
    return emb, (f"the [onnx] extra is installed: all-MiniLM-L6-v2 (int8) on onnxruntime, "
                 f"loaded in {time.perf_counter() - t0:.1f} s")


def _clip(s: str, n: int = 62) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _age(hit: MemoryHit, now: float) -> str:
    return f"{round((now - hit.created_at) / DAY):>3}d"


def _line(hit: MemoryHit, now: float, n: int = 56) -> str:
    sim = "    " if hit.similarity is None else f"{hit.similarity:.2f}"
    return f"{sim} {hit.kind:<10} {hit.source:<5} {_age(hit, now)}  {_clip(hit.text, n)}"


class Tour:
    """The demo's steps over one ``Memory``; each writes its lines through ``echo``."""

    def __init__(self, mem: Memory, clock: DemoClock, echo: Callable[[str], None]) -> None:
        self.mem, self.clock, self.echo = mem, clock, echo
        self.tm = {tid: mem.tenant(tid, create=True) for tid in SEED}
        self.by_text: dict[str, str] = {}  # seed text -> memory id
        self.acme_ids: set[str] = set()  # every memory acme was given

    def seed(self) -> None:
        """Write each tenant's memories, each at its own (backdated) time."""
        self.echo(f"\n1. long-term memories, backdated up to {max(m[0] for ms in SEED.values() for m in ms)} days")
        for tid, mems in SEED.items():
            for days, kind, source, conf, text in mems:
                with self.clock.back(days):
                    self.by_text[text] = self.tm[tid].remember(text, kind=kind, source=source, confidence=conf).id
            kinds = ", ".join(f"{k} {sum(m[1] == k for m in mems)}" for k in ("episodic", "semantic", "procedural"))
            sources = ", ".join(f"{s} {n}" for s in ("user", "agent", "tool")
                                if (n := sum(m[2] == s for m in mems)))
            self.echo(f"  {tid:<8} {len(mems):>2} memories: {kinds}; from {sources}")
        self.acme_ids.update(self.by_text[m[4]] for m in SEED["acme"])

    def sessions(self) -> None:
        """Working memory, staged notes and consolidation (exactly once, with a reinforcement)."""
        acme, sid = self.tm["acme"], "sess-acme-0412"
        self.echo(f"\n2. a support session per tenant: working memory inside the tenant's shard\n"
                  f"  acme/{sid} (ttl {SESSION_TTL / 3600:.0f} h)")
        s = acme.session(sid, ttl=SESSION_TTL)
        s.set("ticket", {"id": "ACME-1042", "status": "open", "priority": "high"})
        self.echo(f"    set/get  ticket = {s.get('ticket')}")
        s.append("turns", {"role": "user", "text": "We were charged twice for March, again!"})
        s.append("turns", {"role": "tool", "text": "billing.refund(ACME-1042) -> ok"})
        s.append("turns", {"role": "agent", "text": "Refunded; confirmation sent to Dana and finance@acme.example"})
        for i, turn in enumerate(s.log("turns")):
            self.echo(f"    turns[{i}] {turn['role']:<5} {_clip(turn['text'])}")
        s.note("Dana reported that the March invoice was charged twice to the company credit card",
               kind="episodic", source="user")
        s.note("Send Acme's refund confirmations to finance@acme.example as well as the billing contact",
               kind="procedural", source="user")
        s.note("Duplicate charges on Acme's card come from the processor retrying timed-out payments",
               kind="semantic", source="tool", confidence=0.9)
        self.echo(f"    staged {len(s.staged())} notes (not embedded yet)")
        first = acme.consolidate(sid, dedupe=DEDUPE)
        self.acme_ids.update(first.ids)
        bumped = [acme.get(i) for i in first.reinforced]
        self.echo(f"  consolidate(dedupe={DEDUPE}) -> added {len(first.added)}, reinforced {len(first.reinforced)}, "
                  f"skipped {first.skipped}, audit #{first.audit_seq}")
        for hit in bumped:
            if hit is not None:
                self.echo(f"    reinforced, not copied (seen {hit.reinforced + 1}x): {_clip(hit.text, 54)}")
        again = acme.consolidate(sid, dedupe=DEDUPE)
        same = again.ids == first.ids and again.replayed
        self.echo(f"  consolidate again -> replayed={again.replayed}, same ids: {'yes' if same else 'NO'} "
                  f"({', '.join(i[:8] for i in again.ids)}): exactly once")
        self._batch()

    def _batch(self) -> None:
        """globex and initech sessions, consolidated by one batch job across tenants."""
        notes = {"globex": ("Globex's finance team approves refunds within two working days", "semantic"),
                 "initech": ("Initech's proxy times out exports larger than 2 GB", "semantic")}
        for tid, (text, kind) in notes.items():
            s = self.tm[tid].session(f"sess-{tid}-1", ttl=SESSION_TTL)
            s.set("ticket", {"id": f"{tid.upper()}-7", "status": "open"})
            s.note(text, kind=kind, source="user")
        reports = self.mem.consolidate_many([(tid, f"sess-{tid}-1") for tid in notes], dedupe=DEDUPE)
        done = ", ".join(f"{tid} added {sum(len(r.added) for r in rs)}" for tid, rs in reports.items())
        self.echo(f"  globex, initech: consolidate_many (one transaction per tenant) -> {done}")

    def recall(self) -> None:
        """The seed's compound filter in one call, against the unfiltered ranking; then a weighted rank."""
        acme, now = self.tm["acme"], self.clock()
        self.echo(f'\n3. recall on acme: "{QUERY}"\n  no filter, k=5:')
        reasons = {}
        for hit in acme.recall(QUERY, k=5):
            why = [w for w, bad in (("older than 90 days", now - hit.created_at > 90 * DAY),
                                    (f"source {hit.source}", hit.source != "user"),
                                    (hit.kind, hit.kind != "semantic")) if bad]
            reasons[hit.id] = why
            self.echo(f"    {_line(hit, now, 42)}" + (f"  <- {', '.join(why)}" if why else ""))
        self.echo('  one call: recall(q, k=5, kinds=["semantic"], sources=["user"], since=timedelta(days=90))')
        kept = acme.recall(QUERY, k=5, kinds=["semantic"], sources=["user"], since=timedelta(days=90))
        for hit in kept:
            self.echo(f"    {_line(hit, now)}")
        dropped = sum(1 for i, why in reasons.items() if why and i not in {h.id for h in kept})
        self.echo(f"    {len(kept)} of 5 asked: only user-confirmed facts of the last 90 days; "
                  f"{dropped} of the unfiltered top 5 left out")
        self.echo(f'  "{WEIGHTED_QUERY}" kinds=["episodic"], rank="weighted", explain=True:\n'
                  "    score = 0.7 similarity + 0.2 recency (half-life 30 d, from last seen) + 0.1 confidence")
        for hit in acme.recall(WEIGHTED_QUERY, k=3, kinds=["episodic"], rank="weighted", explain=True):
            e = hit.explain or {}
            seen = f" (seen {hit.reinforced + 1}x)" if hit.reinforced else ""
            self.echo(f"    {hit.score or 0:.2f} = sim {e.get('similarity', 0):.2f} rec {e.get('recency', 0):.2f} "
                      f"conf {e.get('confidence', 0):.2f}  {hit.kind:<8} {_clip(hit.text, 40)}{seen}")

    def supersede_forget(self) -> None:
        """Supersede the billing contact (history, as_of), then forget the agent's guess."""
        acme, now = self.tm["acme"], self.clock()
        self.echo("\n4. supersede, history, as_of (acme)")
        new = acme.supersede(self.by_text[CONTACT], NEW_CONTACT, source="user",
                             reason="contact changed (ticket ACME-1051)")
        self.acme_ids.add(new.id)
        cur = acme.recall(CONTACT_QUERY, k=1, kinds=["semantic"])
        self.echo(f'  recall "{CONTACT_QUERY}" k=1 -> {_clip(cur[0].text, 48) if cur else "nothing"}')
        chain = acme.history(new.id)
        self.echo(f"  history: {len(chain)} versions, oldest first")
        for hit in chain:
            until = "" if hit.valid_until is None else " (valid until today)"
            self.echo(f"    {_age(hit, now)}  {_clip(hit.text, 70)}{until}")
        old = acme.recall(CONTACT_QUERY, k=1, kinds=["semantic"], as_of=timedelta(days=1))
        self.echo(f"  as_of=yesterday -> {_clip(old[0].text) if old else 'nothing'}")
        reason = "customer objected to guesses about its finances"
        n = acme.forget(ids=[self.by_text[GUESS]], reason=reason)
        entry = acme.audit(ops=["forget"])[-1]
        leaked = GUESS in repr(entry)
        self.echo(f'\n5. forget {n} memory (the agent\'s guess), reason "{reason}"\n'
                  f"  audit #{entry.seq} keeps {len(entry.ids)} id and the reason, the text: "
                  f"{'LEAKED' if leaked else 'not kept'}; get(id) -> {acme.get(self.by_text[GUESS])}")

    def audit(self) -> None:
        """The audit log (runs of the same op folded) and the tenant's verified chain."""
        entries = self.tm["acme"].audit()
        self.echo("\n6. audit log of acme (hash-chained; op, actor, ids)")
        for first, last in _runs(entries):
            seqs = f"#{first.seq}" if first is last else f"#{first.seq}-{last.seq}"
            times = "" if first is last else f" x{last.seq - first.seq + 1}"
            ids = sum(len(e.ids) for e in entries if first.seq <= e.seq <= last.seq)
            extra = f"  session {first.session}" if first.session else ""
            extra += f'  "{_clip(first.reason, 40)}"' if first.reason else ""
            self.echo(f"  {seqs:<7} {first.op + times:<15} {first.actor or '-':<14} ids {ids:<3}{extra}".rstrip())
        report = self.mem.store.verify("acme")
        state = "chain intact" if report.ok else "PROBLEMS: " + "; ".join(report.problems)
        self.echo(f"  Store.verify('acme'): ok={report.ok}, {report.records} records, {len(entries)} audit entries, {state}")

    def isolation(self) -> None:
        """Another tenant's query sees only its own memories; a cross-tenant distill writes nothing."""
        globex = self.tm["globex"]
        hits = globex.recall(QUERY, k=5)
        foreign = [h for h in hits if h.id in self.acme_ids or "Acme" in h.text]
        self.echo(f'\n7. isolation: the same query "{QUERY}" on globex\n'
                  f"  {len(hits)} hits, {len(hits) - len(foreign)} globex memories, {len(foreign)} from acme; "
                  f"best: {_clip(hits[0].text, 50) if hits else '-'}")
        s = globex.session("sess-globex-2", ttl=SESSION_TTL)
        s.note("Globex's shipping API key rotates every 90 days", kind="semantic", source="user")
        before = globex.count()

        def leaky(notes: Sequence[Note]) -> list[Note]:
            return [*notes, Note(text=NEW_CONTACT, kind="semantic", source="user", tenant="acme",
                                 session="sess-acme-0412")]

        try:
            globex.consolidate("sess-globex-2", leaky)
            outcome = "WRITTEN (isolation broken)"
        except TenantMismatch as exc:
            outcome = f"TenantMismatch:\n    {exc}"
        self.echo(f"  distill emitting an acme item into globex's session -> {outcome}\n"
                  f"    globex memories {before} -> {globex.count()}, notes still staged: {len(s.staged())}")

    def offboard(self) -> None:
        """Offboard initech: its files go, an erasure record stays."""
        tid = "initech"
        path = self.mem.store.tenant_path(tid)
        self.echo(f"\n8. offboarding {tid}")
        rep = self.mem.offboard(tid, reason="contract ended; customer requested erasure")
        self.echo(f"  offboard(reason=...) -> {rep.files_removed} files, {rep.bytes_removed / 1024:.0f} KiB removed; "
                  f"tenant directory exists: {'YES' if path.exists() else 'no'}\n"
                  f"  tenants now: {', '.join(self.mem.tenants())}")
        rec = self.mem.erasures()[-1]
        self.echo(f"  erasure record (the store's erasure log outlives the tenant): tenant sha256 "
                  f"{rec.tenant_digest[:16]}…,\n    reason \"{rec.reason}\", {rec.bytes_removed:,} bytes, "
                  f"{rec.files_removed} files")


def _runs(entries: Sequence[AuditEntry]) -> list[tuple[AuditEntry, AuditEntry]]:
    """Consecutive entries with the same op, actor and session, as (first, last) pairs."""
    runs: list[tuple[AuditEntry, AuditEntry]] = []
    for e in entries:
        if runs and (runs[-1][1].op, runs[-1][1].actor, runs[-1][1].session, runs[-1][1].reason) == (
                e.op, e.actor, e.session, e.reason):
            runs[-1] = (runs[-1][0], e)
        else:
            runs.append((e, e))
    return runs


def run_demo(directory: str | None, *, embeddings: str = "auto", echo: Callable[[str], None]) -> str:
    """Run the tour in ``directory`` (a new temporary directory when None), writing its
    lines through ``echo``; returns the store directory.

    :raises TenantExists: ``directory`` already holds a store.
    :raises EmbedderError: ``embeddings="minilm"`` and the ``[onnx]`` extra is not usable.
    """
    t0 = time.perf_counter()
    if directory is not None and os.path.exists(os.path.join(directory, "tenantvec.json")):
        raise TenantExists(f"{directory!r} already holds a tenantvec store; give the demo a new directory")
    emb, why = choose_embedder(embeddings)
    loaded = time.perf_counter() - t0
    if directory is None:
        directory = tempfile.mkdtemp(prefix="tenantvec-demo-")
    clock = DemoClock()
    echo(f"tenantvec demo: agent memory for {len(SEED)} tenants in {directory}")
    what = ("feature hashing, no model: texts match by shared words, not meaning"
            if isinstance(emb, HashingEmbedder) else "a real local model")
    echo(f"embedder: {emb.name} ({emb.dim}-d, {what})\n  because {why}")
    with Memory(directory, embedder=emb, clock=clock, actor=ACTOR) as mem:
        tour = Tour(mem, clock, echo)
        tour.seed()
        tour.sessions()
        tour.recall()
        tour.supersede_forget()
        tour.audit()
        tour.isolation()
        tour.offboard()
    echo(f"\ndone in {time.perf_counter() - t0:.1f} s (embedder ready in {loaded:.1f} s); "
         f"next: tenantvec --root {directory} ls")
    return directory
