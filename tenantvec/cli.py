"""The ``tenantvec`` command line: inspect, verify, compact, export and import a store;
recall a tenant's agent memories, list its sessions and audit log, offboard it.

Every command is thin: open the store (read-only unless the command writes), make one
library call, print. Printing goes through :func:`output` (``--json`` or an aligned
table); library errors become one clean line and a non-zero exit in
:meth:`_Group.invoke`; progress goes to stderr. Option defaults come from the one table
in :mod:`tenantvec._options`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import __version__
from ._cliargs import EMBEDDER_ENV, EMBEDDER_SPECS, WHEN, embedder_for
from ._options import (
    DEFAULT_HNSW_M,
    DEFAULT_HNSW_THRESHOLD,
    DEFAULT_METRIC,
    DEFAULT_PLAN_FIELDS,
    DEFAULT_PLAN_HOT_FRACTION,
    MAX_HNSW_M,
    METRICS,
)
from ._store import CONFIG_FILE, Store
from .errors import TenantVecError

if TYPE_CHECKING:
    pass

# The memory layer and the embedders are imported by the commands that use them: importing
# the CLI loads no storage library and no msgpack.

ROOT_ENV = "TENANTVEC_ROOT"
CLI_ACTOR = "cli"  # the actor of the audit entries the CLI writes
T = TypeVar("T")
_RECORDS_FOR_PROGRESS = 2000  # show a progress bar from this many records
_TENANTS_FOR_PROGRESS = 2


# ---------------------------------------------------------------------------- errors
class _Group(click.Group):
    """The one place where library errors become ``click.ClickException`` (storage
    failures arrive as :class:`TenantVecError`\\ s: the library translates them)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TenantVecError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None


# ---------------------------------------------------------------------------- output
def _bytes(n: Any) -> str:
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _time(ts: Any) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _plain(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    return str(v)


def _clip(width: int) -> Callable[[Any], str]:
    def fmt(v: Any) -> str:
        s = _plain(v).replace("\n", " ")
        return s if len(s) <= width else s[: width - 1] + "…"

    return fmt


@dataclasses.dataclass(frozen=True)
class Col:
    """A table column: key in the row dict, header, formatter, right-aligned."""

    key: str
    header: str = ""
    fmt: Callable[[Any], str] = _plain
    right: bool = False


def _bytes_col(key: str, header: str) -> Col:
    return Col(key, header, _bytes, right=True)


@dataclasses.dataclass
class Output:
    """What a command returns: data (a dict or a list of dicts) plus, for the table
    form only, lines printed after the table, and an exit status."""

    data: Any
    footer: Sequence[str] = ()
    exit_code: int = 0
    table: list[dict] | None = None  # rows for the table form when they differ from ``data``
    columns: Sequence[Col] | None = None  # the table's columns when they depend on the options


def _table(rows: Sequence[dict], columns: Sequence[Col]) -> str:
    cells = [[c.fmt(r.get(c.key)) for c in columns] for r in rows]
    heads = [c.header or c.key for c in columns]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(heads)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if c.right else v.ljust(w) for v, w, c in zip(values, widths, columns)]
        return "  ".join(parts).rstrip()

    out = [line(heads), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)


def _pairs(obj: dict, formats: dict[str, Callable[[Any], str]]) -> str:
    width = max((len(k) for k in obj), default=0)
    lines = []
    for k, v in obj.items():
        if isinstance(v, dict) and k not in formats and v:
            v = ", ".join(f"{a}={_plain(b)}" for a, b in v.items())
        lines.append(f"{k.ljust(width)}  {formats.get(k, _plain)(v)}")
    return "\n".join(lines)


def output(columns: Sequence[Col] = (), formats: dict[str, Callable[[Any], str]] | None = None) -> Callable:
    """Decorator shared by every data command: adds ``--json`` and prints the result.

    The command returns a list of dicts (a table with ``columns``), a dict (a key/value
    listing, values formatted by ``formats``), an :class:`Output`, or None.
    """

    def deco(f: Callable) -> Callable:
        @functools.wraps(f)
        def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> None:
            result = f(*args, **kwargs)
            if result is None:
                return
            out = result if isinstance(result, Output) else Output(result)
            if as_json:
                click.echo(json.dumps(out.data, indent=2, ensure_ascii=False, default=_json_default))
            else:
                shown = out.data if out.table is None else out.table
                if isinstance(shown, dict):
                    click.echo(_pairs(shown, formats or {}))
                elif shown:
                    click.echo(_table(shown, out.columns or columns or [Col(k) for k in shown[0]]))
            if not as_json:
                for line in out.footer:
                    click.echo(line)
            if out.exit_code:
                click.get_current_context().exit(out.exit_code)

        return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(wrapper)

    return deco


def _json_default(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


# ---------------------------------------------------------------------------- progress
def _interactive() -> bool:
    """Progress bars only when a person watches stderr (not in logs or pipes)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Progress:
    """A ``progress(done, total)`` callback drawing a click progress bar on stderr."""

    def __init__(self, label: str, minimum: int) -> None:
        self.label, self.minimum = label, minimum
        self.bar: Any = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if total < self.minimum or not _interactive():
                return
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@contextmanager
def _progress(label: str, minimum: int) -> Iterator[_Progress]:
    p = _Progress(label, minimum)
    try:
        yield p
    finally:
        p.close()


def _each(items: Sequence[T], label: str) -> Iterator[T]:
    """Iterate tenants with a progress bar on stderr when there are several."""
    if len(items) < _TENANTS_FOR_PROGRESS or not _interactive():
        yield from items
        return
    with click.progressbar(items, label=label, file=sys.stderr) as bar:
        yield from bar


# ---------------------------------------------------------------------------- context
class _Ctx:
    def __init__(self, root: str | None) -> None:
        self.root = root

    def store(self, *, write: bool = False) -> Store:
        """The store at ``--root``: read-only unless the command writes."""
        if not self.root:
            raise click.UsageError(f"no store given: pass --root DIR or set {ROOT_ENV}")
        if write and not os.path.isfile(os.path.join(self.root, CONFIG_FILE)):
            raise click.ClickException(f"no tenantvec store at {self.root!r} (missing {CONFIG_FILE})")
        return Store(self.root, readonly=not write)


class _EchoHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"tenantvec: {record.getMessage()}", err=True)


def _setup_logging(verbose: bool) -> None:
    logger = logging.getLogger("tenantvec")
    if not any(isinstance(h, _EchoHandler) for h in logger.handlers):
        logger.addHandler(_EchoHandler())
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def _json_arg(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep to decode
        raise click.BadParameter(f"not valid JSON ({exc.args[0]})", param_hint=name) from None


def _confirm(store: Store, tenant: str, yes: bool, action: str, question: str) -> None:
    """Go on with a destructive ``action`` on an existing ``tenant`` only with ``--yes``, or
    when a person at a terminal answers ``question`` with yes."""
    if not store.has_tenant(tenant):
        store.tenant(tenant)  # raises TenantNotFound with the usual message
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"refusing to {action} tenant {tenant!r} without --yes")
        click.confirm(question, abort=True, err=True)


def _targets(store: Store, tenants: Sequence[str], all_: bool) -> list[str]:
    if all_ and tenants:
        raise click.UsageError("name tenants or pass --all, not both")
    if not all_ and not tenants:
        raise click.UsageError("name one or more tenants, or pass --all")
    return store.tenants() if all_ else list(tenants)


pass_ctx = click.make_pass_decorator(_Ctx)


# ---------------------------------------------------------------------------- commands
@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--root", envvar=ROOT_ENV, metavar="DIR", type=click.Path(file_okay=False),
              help=f"Store root directory (or set {ROOT_ENV}).")
@click.option("-v", "--verbose", is_flag=True, help="Log what the library does (to stderr).")
@click.version_option(__version__, "--version", prog_name="tenantvec")
@click.pass_context
def main(ctx: click.Context, root: str | None, verbose: bool) -> None:
    """Inspect and maintain a tenantvec store: one LMDB + vector index per tenant.

    Read commands (ls, info, stats, get, search, verify, export, compact --dry-run,
    memory recall, memory sessions, audit) open the store read-only and work while an
    application holds it open for writing. Commands that write (import, drop, activate,
    deactivate, compact, verify --fix, offboard) need the writer lock and say who holds
    it when they cannot get it.
    """
    _setup_logging(verbose)
    ctx.obj = _Ctx(root)


_LS_COLUMNS = [
    Col("tenant", "TENANT"),
    Col("count", "RECORDS", right=True),
    Col("state", "STATE"),
    Col("dim", "DIM", right=True),
    Col("metric", "METRIC"),
    Col("index", "INDEX"),
    _bytes_col("bytes", "DISK"),
    Col("last_write", "LAST WRITE", _time),
]
_LS_MEMORY_COLUMNS = [
    Col("memories", "MEMORIES E/S/P", lambda v: "-" if v is None else "/".join(map(str, v.values())), right=True),
    Col("sessions", "SESSIONS", right=True),
]


def _summary_row(s: Any) -> dict:
    row = {"tenant": s.tenant, "count": s.count, "state": s.state, "dim": s.dim, "metric": s.metric,
           "index": s.index_kind, "bytes": s.bytes_on_disk, "last_write": s.last_write}
    if s.error:
        row["error"] = s.error
    return row


def _memory_fields(store: Store, tenant: str, state: str, now: float) -> dict:
    """The embedder, current memories by kind and live sessions of a tenant the memory
    layer uses (None each for others, and for inactive or unreadable tenants)."""
    from .memory._tenant import live_sessions, memory_counts, stored_fingerprint

    fields: dict[str, Any] = {"embedder": None, "memories": None, "sessions": None}
    if state not in ("hot", "cold"):
        return fields
    try:
        t = store.tenant(tenant)
        stored = stored_fingerprint(t)
        if stored is not None:
            fields.update(embedder=stored[0], memories=memory_counts(t, now), sessions=len(live_sessions(t, now)))
    except TenantVecError as exc:  # dropped, deactivated or damaged since it was listed: list it anyway
        logging.getLogger("tenantvec").warning("tenant %r: cannot read its memory: %s", tenant, exc)
    return fields


@main.command("ls")
@click.option("--no-memory", is_flag=True,
              help="Leave out the agent-memory columns: list from the tenants' files alone, loading none.")
@output(_LS_COLUMNS)
@pass_ctx
def ls_cmd(cfg: _Ctx, no_memory: bool) -> Any:
    """List tenants: records, state (hot/cold/inactive), dimension, disk bytes, last write,
    and for tenants holding agent memory their memories by kind (episodic/semantic/procedural)
    and live sessions (reading those loads each active tenant: --no-memory skips it)."""
    with cfg.store() as store:
        rows = [_summary_row(s) for s in store.tenant_summaries()]
        if no_memory:
            return rows
        now = time.time()
        for row in _each(rows, "reading memory"):
            row.update(_memory_fields(store, row["tenant"], row["state"], now))
    return Output(rows, columns=_LS_COLUMNS + _LS_MEMORY_COLUMNS)


@main.command("info")
@click.argument("tenant")
@output(formats={"bytes": _bytes, "memory_bytes": _bytes, "last_write": _time,
                 "deleted_fraction": lambda v: f"{v:.1%}"})
@pass_ctx
def info_cmd(cfg: _Ctx, tenant: str) -> Any:
    """Everything known about one tenant: size, index and its parameters, tombstones,
    deleted fraction, operation sequence and index checkpoint; for a tenant holding agent
    memory, its embedder, memories by kind and live sessions."""
    with cfg.store() as store:
        state = store.tenant_summaries([tenant])[0].state
        info = store.tenant(tenant).info()
        memory = _memory_fields(store, tenant, state, time.time())
    return {
        "tenant": info.tenant, "count": info.count, "state": state, "dim": info.dim, "metric": info.metric,
        "index": info.index_kind, "index_params": info.index_params, "deleted": info.deleted,
        "deleted_fraction": info.deleted_fraction, "bytes": info.bytes_on_disk, "memory_bytes": info.memory_bytes,
        "seq": info.seq, "checkpoint_seq": info.checkpoint_seq, "last_write": info.last_write, **memory,
    }


@main.command("stats")
@output(formats={"bytes": _bytes, "memory_bytes": _bytes, "memory_budget": _bytes})
@pass_ctx
def stats_cmd(cfg: _Ctx) -> Any:
    """Store totals: tenants by state and index kind, records, bytes on disk."""
    with cfg.store() as store:
        summaries, st = store.tenant_summaries(), store.stats()
    states = Counter(s.state for s in summaries)
    kinds = Counter(s.index_kind for s in summaries if s.index_kind)
    return {
        "tenants": len(summaries),
        "records": sum(s.count or 0 for s in summaries),
        "bytes": sum(s.bytes_on_disk for s in summaries),
        "hot": states["hot"], "cold": states["cold"], "inactive": states["inactive"], "corrupt": states["corrupt"],
        "exact_indexes": kinds["exact"], "hnsw_indexes": kinds["hnsw"],
        "memory_bytes": st.memory_bytes, "memory_budget": st.memory_budget, "max_hot": st.max_hot,
        "loads": st.loads, "evictions": st.evictions, "hit_rate": st.hit_rate,
    }


def _record_row(r: Any, vectors: bool) -> dict:
    row = {"id": r.id, "document": r.document, "metadata": r.metadata,
           "created_at": r.created_at, "updated_at": r.updated_at}
    if vectors:
        row["vector"] = r.vector.tolist() if r.vector is not None else None
    return row


@main.command("get")
@click.argument("tenant")
@click.argument("ids", nargs=-1)
@click.option("--where", metavar="JSON", help='Metadata filter, e.g. \'{"kind": "fact"}\'.')
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="Most records to print (default 20 without IDS; 0 for all).")
@click.option("--vectors", is_flag=True, help="Include the vectors (with --json).")
@output([Col("id", "ID", _clip(32)), Col("document", "DOCUMENT", _clip(48)), Col("metadata", "METADATA", _clip(40)),
         Col("updated_at", "UPDATED", _time)])
@pass_ctx
def get_cmd(cfg: _Ctx, tenant: str, ids: tuple[str, ...], where: str | None, limit: int | None, vectors: bool) -> Any:
    """Print records of TENANT: the given IDS, or those matching --where, in insertion order."""
    if limit is None:
        limit = None if ids else 20
    with cfg.store() as store:
        recs = store.tenant(tenant).get(list(ids) if ids else None, where=_json_arg(where, "--where"),
                                        limit=limit or None, include_vectors=vectors)
    return [_record_row(r, vectors) for r in recs]


@main.command("search")
@click.argument("tenant")
@click.option("--like", "like", metavar="ID", help="Search with the vector of this record (it is left out).")
@click.option("--vector", metavar="JSON", help="Search with this vector, a JSON list of numbers.")
@click.option("-k", "--k", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Hits to return.")
@click.option("--where", metavar="JSON", help="Metadata filter the hits must match.")
@output([Col("rank", "#", right=True), Col("distance", "DISTANCE", lambda v: f"{v:.4f}", right=True),
         Col("id", "ID", _clip(32)), Col("document", "DOCUMENT", _clip(48)), Col("metadata", "METADATA", _clip(40))])
@pass_ctx
def search_cmd(cfg: _Ctx, tenant: str, like: str | None, vector: str | None, k: int, where: str | None) -> Any:
    """Nearest records of TENANT to a record (--like ID) or a vector (--vector JSON)."""
    if (like is None) == (vector is None):
        raise click.UsageError("give exactly one of --like ID or --vector JSON")
    filt = _json_arg(where, "--where")
    with cfg.store() as store:
        t = store.tenant(tenant)
        if like is not None:
            found = t.get([like], include_vectors=True)
            if not found:
                raise click.ClickException(f"tenant {tenant!r} has no record {like!r}")
            hits = [h for h in t.query(found[0].vector, k=k + 1, where=filt) if h.id != like][:k]
        else:
            hits = t.query(_json_arg(vector, "--vector"), k=k, where=filt)
    return [{"rank": i + 1, "id": h.id, "distance": h.distance, "metadata": h.metadata, "document": h.document}
            for i, h in enumerate(hits)]


@main.command("verify")
@click.argument("tenants", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Verify every tenant.")
@click.option("--fix", is_flag=True, help="Repair what can be repaired from LMDB (opens the store for writing).")
@output([Col("tenant", "TENANT"), Col("status", "STATUS"), Col("records", "RECORDS", right=True),
         Col("problems", "PROBLEMS", lambda v: str(len(v)), right=True),
         Col("fixed", "FIXED", lambda v: str(len(v)), right=True)])
@pass_ctx
def verify_cmd(cfg: _Ctx, tenants: tuple[str, ...], all_: bool, fix: bool) -> Any:
    """Check tenants' files: identity, records, vectors, id map, index snapshot and
    contents. Exits 0 when healthy, 1 when problems remain."""
    rows, footer = [], []
    with cfg.store(write=fix) as store:
        for tid in _each(_targets(store, tenants, all_), "verifying"):
            r = store.verify(tid, fix=fix)
            status = ("ok" if not r.found else "repaired") if r.ok else "PROBLEMS"
            rows.append({"tenant": r.tenant, "ok": r.ok, "status": status, "records": r.records,
                         "problems": list(r.problems), "found": list(r.found), "fixed": list(r.fixed),
                         "notes": list(r.notes)})
            if r.found or r.notes:
                footer.append(f"\n{r.tenant}:")
                footer += [f"  found:  {p}" for p in r.found if p not in r.problems]
                footer += [f"  fixed:  {p}" for p in r.fixed]
                footer += [f"  PROBLEM: {p}" for p in r.problems]
                footer += [f"  note:   {p}" for p in r.notes]
    if any(not r["ok"] for r in rows) and not fix:
        footer.append("\nrun `tenantvec verify --fix` to repair what LMDB allows")
    return Output(rows, footer, exit_code=0 if all(r["ok"] for r in rows) else 1)


@main.command("compact")
@click.argument("tenants", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Compact every tenant.")
@click.option("--dry-run", is_flag=True, help="Only estimate what compaction would save (read-only).")
@output([Col("tenant", "TENANT"), Col("index", "INDEX"), Col("count", "RECORDS", right=True),
         Col("deleted_before", "TOMBSTONES", right=True), _bytes_col("bytes_before", "DISK BEFORE"),
         _bytes_col("bytes_after", "DISK AFTER"), _bytes_col("memory_before", "MEM BEFORE"),
         _bytes_col("memory_after", "MEM AFTER")])
@pass_ctx
def compact_cmd(cfg: _Ctx, tenants: tuple[str, ...], all_: bool, dry_run: bool) -> Any:
    """Rebuild indexes without tombstones and rewrite LMDB compactly; report bytes and
    memory before and after (estimates with --dry-run)."""
    rows = []
    with cfg.store(write=not dry_run) as store:
        for tid in _each(_targets(store, tenants, all_), "estimating" if dry_run else "compacting"):
            r = store.compact(tid, dry_run=dry_run)
            row = dataclasses.asdict(r)
            row["index"] = r.index_before if r.index_before == r.index_after else f"{r.index_before}->{r.index_after}"
            row["bytes_saved"] = r.bytes_saved
            rows.append(row)
    footer = ["\n(estimates: nothing was changed)"] if dry_run and rows else []
    return Output(rows, footer)


_FILE_FORMATS: dict[str, Callable[[Any], str]] = {"bytes": _bytes}


@main.command("export")
@click.argument("tenant")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@output(formats=_FILE_FORMATS)
@pass_ctx
def export_cmd(cfg: _Ctx, tenant: str, file: str) -> Any:
    """Write TENANT (records, vectors, metadata, documents, timestamps, working memory,
    dim and metric) to one portable, SHA-256-checksummed FILE."""
    with cfg.store() as store, _progress(f"exporting {tenant}", _RECORDS_FOR_PROGRESS) as bar:
        r = store.export_tenant(tenant, file, progress=bar)
    return dataclasses.asdict(r)


@main.command("import")
@click.argument("tenant")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@output(formats=_FILE_FORMATS)
@pass_ctx
def import_cmd(cfg: _Ctx, tenant: str, file: str) -> Any:
    """Create TENANT from an export FILE (checksum verified first; a damaged file
    creates nothing). Records keep their ids and timestamps. Creates the store at
    --root if there is none yet."""
    if not cfg.root:
        raise click.UsageError(f"no store given: pass --root DIR or set {ROOT_ENV}")
    with Store(cfg.root) as store, _progress(f"importing {tenant}", _RECORDS_FOR_PROGRESS) as bar:
        r = store.import_file(tenant, file, progress=bar)
    return dataclasses.asdict(r)


@main.command("drop")
@click.argument("tenant")
@click.option("--yes", is_flag=True, help="Really drop: remove the tenant's files, irrevocably.")
@pass_ctx
def drop_cmd(cfg: _Ctx, tenant: str, yes: bool) -> None:
    """Remove TENANT and all its files (irrevocable; needs --yes)."""
    with cfg.store(write=True) as store:
        _confirm(store, tenant, yes, "drop", f"Drop tenant {tenant!r} and all its files?")
        store.drop_tenant(tenant)
    click.echo(f"dropped tenant {tenant!r}")


@main.command("deactivate")
@click.argument("tenant")
@pass_ctx
def deactivate_cmd(cfg: _Ctx, tenant: str) -> None:
    """Make TENANT refuse calls (TenantInactive) until `activate`; its data stays."""
    with cfg.store(write=True) as store:
        store.deactivate(tenant)
    click.echo(f"deactivated tenant {tenant!r}")


@main.command("activate")
@click.argument("tenant")
@pass_ctx
def activate_cmd(cfg: _Ctx, tenant: str) -> None:
    """Re-enable a TENANT deactivated with `deactivate`."""
    with cfg.store(write=True) as store:
        store.activate(tenant)
    click.echo(f"activated tenant {tenant!r}")


# ---------------------------------------------------------------------------- agent memory
@main.group("memory")
def memory_group() -> None:
    """Agent memory of a tenant (tenantvec.memory): recall memories by meaning, list the
    live working-memory sessions. Both open the store read-only."""


def _explained(parts: Any) -> str:
    return "-" if not parts else " ".join(f"{k}={v:.3f}" for k, v in parts.items())


_RECALL_COLUMNS = [Col("rank", "#", right=True), Col("score", "SCORE", lambda v: f"{v:.4f}", right=True),
                   Col("kind", "KIND"), Col("source", "SOURCE"), Col("confidence", "CONF", right=True),
                   Col("created_at", "CREATED", _time), Col("text", "TEXT", _clip(56)), Col("id", "ID")]


@memory_group.command("recall")
@click.argument("tenant")
@click.argument("text")
@click.option("-k", "--k", "k", type=click.IntRange(min=1), default=5, show_default=True, help="Memories to return.")
@click.option("--kind", "kinds", multiple=True, metavar="KIND",
              help="Only memories of this kind: episodic, semantic or procedural (repeat the option for several).")
@click.option("--source", "sources", multiple=True, metavar="SOURCE",
              help="Only memories from this source: user (stated or confirmed by a user), agent (inferred), "
                   "tool or system (repeatable).")
@click.option("--since", type=WHEN, help="Only memories created at or after WHEN: an ISO date or datetime, "
                                         "unix seconds, or a duration ago (90d, 12h, 30m).")
@click.option("--until", type=WHEN, help="Only memories created before WHEN (as --since).")
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=None, help="Only memories this confident.")
@click.option("--include-superseded", is_flag=True, help="Also superseded and ended memories (hidden otherwise).")
@click.option("--rank", metavar="similarity|weighted", default="similarity", show_default=True,
              help="similarity: cosine similarity; weighted: 0.7 similarity + 0.2 recency (30-day half-life) "
                   "+ 0.1 confidence.")
@click.option("--explain", is_flag=True, help="Show the components of each hit's score.")
@click.option("--embedder", "embedder_spec", envvar=EMBEDDER_ENV, metavar="SPEC",
              help=f"The tenant's embedder: {EMBEDDER_SPECS} (or set {EMBEDDER_ENV}; default: the built-in "
                   "embedder named by the tenant's stored fingerprint).")
@output(_RECALL_COLUMNS)
@pass_ctx
def recall_cmd(cfg: _Ctx, tenant: str, text: str, k: int, kinds: tuple[str, ...], sources: tuple[str, ...],
               since: float | None, until: float | None, min_confidence: float | None, include_superseded: bool,
               rank: str, explain: bool, embedder_spec: str | None) -> Any:
    """The K memories of TENANT most relevant to TEXT, best first, embedded with the
    tenant's embedder (see --embedder). The five user-confirmed facts of the last 90 days
    most similar to a question:

    \b
        tenantvec memory recall acme "where is billing data?" --kind semantic --source user --since 90d
    """
    from .memory import Memory

    with cfg.store() as store:
        tm = Memory(store, embedder=embedder_for(embedder_spec, store.tenant(tenant))).tenant(tenant)
        hits = tm.recall(text, k, kinds=list(kinds) or None, sources=list(sources) or None,
                         min_confidence=min_confidence, since=since, until=until,
                         include_superseded=include_superseded, rank=rank, explain=explain)
    rows = [{"rank": i + 1, **dataclasses.asdict(h)} for i, h in enumerate(hits)]
    columns = list(_RECALL_COLUMNS)
    if include_superseded:
        columns.append(Col("superseded_by", "SUPERSEDED BY"))
    if explain:
        columns.append(Col("explain", "EXPLAIN", _explained))
    return Output(rows, [] if rows else ["no memory matches"], columns=columns)


@memory_group.command("sessions")
@click.argument("tenant")
@output([Col("id", "SESSION"), Col("created_at", "CREATED", _time), Col("expires_at", "EXPIRES", _time),
         Col("staged", "STAGED NOTES", right=True), Col("rounds", "ROUNDS", right=True)])
@pass_ctx
def sessions_cmd(cfg: _Ctx, tenant: str) -> Any:
    """Live (unexpired) working-memory sessions of TENANT: id, when opened, when they
    expire (- for no TTL), notes staged for consolidation, consolidation rounds done."""
    from .memory._tenant import live_sessions

    with cfg.store() as store:
        rows = [dataclasses.asdict(s) for s in live_sessions(store.tenant(tenant), time.time())]
    return Output(rows, [] if rows else [f"tenant {tenant!r} has no live session"])


def _counts(v: Any) -> str:
    return "-" if not v else " ".join(f"{k}={n}" for k, n in v.items())


@main.command("audit")
@click.argument("tenant")
@click.option("--since", type=WHEN, help="Only entries at or after WHEN: an ISO date or datetime, unix seconds, "
                                         "or a duration ago (90d, 12h, 30m).")
@click.option("--until", type=WHEN, help="Only entries before WHEN (as --since).")
@click.option("--op", "ops", multiple=True, metavar="OP",
              help="Only entries of this operation, e.g. remember, supersede, forget, consolidate, expire, "
                   "reembed, create, export, import, compact, verify (repeatable).")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="At most N entries: the first N in sequence order (page on with --since).")
@output([Col("seq", "SEQ", right=True), Col("time", "TIME", _time), Col("op", "OP"), Col("actor", "ACTOR"),
         Col("session", "SESSION"), Col("ids", "IDS", lambda v: str(len(v)), right=True),
         Col("counts", "COUNTS", _counts), Col("reason", "REASON", _clip(40))])
@pass_ctx
def audit_cmd(cfg: _Ctx, tenant: str, since: float | None, until: float | None, ops: tuple[str, ...],
              limit: int | None) -> Any:
    """The audit log of TENANT, oldest first: every change to its memory and every
    lifecycle step (sequence, time, operation, actor, session, ids concerned, counts,
    reason; never the content). --json lists the ids and each entry's chained hash."""
    from .memory._tenant import read_audit

    with cfg.store() as store:
        entries = read_audit(store.tenant(tenant), since=since, until=until, ops=list(ops) or None, limit=limit)
    rows = [dataclasses.asdict(e) for e in entries]
    return Output(rows, [] if rows else ["no audit entry matches"])


@main.command("offboard")
@click.argument("tenant")
@click.option("--reason", required=True, help="Why the tenant is erased (kept in the store's erasure log).")
@click.option("--export", "export_to", type=click.Path(dir_okay=False, writable=True),
              help="First export the tenant to this file (as `export` does).")
@click.option("--yes", is_flag=True, help="Really erase: remove the tenant's files, irrevocably.")
@output(formats={"time": _time, "bytes_removed": _bytes})
@pass_ctx
def offboard_cmd(cfg: _Ctx, tenant: str, reason: str, export_to: str | None, yes: bool) -> Any:
    """Erase TENANT for good (needs --yes): audit the offboarding, deactivate it, export it
    with --export, drop its files, check that none remain, and append an erasure record
    (SHA-256 of the tenant id, time, reason, bytes and files removed) to the store's
    erasure log, erasures.jsonl, which outlives the tenant."""
    from .memory._memory import offboard_tenant

    with cfg.store(write=True) as store:
        _confirm(store, tenant, yes, "offboard", f"Erase tenant {tenant!r} and all its files for good?")
        report = offboard_tenant(store, tenant, reason=reason, actor=CLI_ACTOR, now=time.time(), export_to=export_to)
    return dataclasses.asdict(report)


def _plan_rows(p: Any) -> list[dict]:
    hot = p.hot_tenants
    return [
        {"quantity": "index kind", "value": p.index_kind, "basis": f"{p.records_per_tenant} records vs hnsw_threshold"},
        {"quantity": "LMDB bytes per record", "value": f"{p.lmdb_bytes_per_record:.0f} B",
         "basis": "vector + record + id map, page-granular"},
        {"quantity": "disk per tenant", "value": _bytes(p.disk_per_tenant), "basis": "data.mdb + lock.mdb + index.hnsw"},
        {"quantity": "disk, all tenants", "value": _bytes(p.disk_total), "basis": f"{p.tenants} tenants"},
        {"quantity": "hot tenants", "value": str(hot), "basis": f"{p.hot_fraction:.0%} of {p.tenants}"},
        {"quantity": "index memory per hot tenant", "value": _bytes(p.index_memory_per_tenant),
         "basis": "freshly built index (growth can add up to as much again)"},
        {"quantity": "records in memory per hot tenant", "value": _bytes(p.records_memory_per_tenant),
         "basis": "at most: every record decoded for hits"},
        {"quantity": "filter columns per hot tenant", "value": _bytes(p.filter_memory_per_tenant),
         "basis": "after its first filtered query"},
        {"quantity": "memory, hot tenants", "value": _bytes(p.memory_hot), "basis": "counts against memory_budget"},
        {"quantity": "suggested memory_budget", "value": _bytes(p.suggested_memory_budget), "basis": "hot memory + 25%"},
        {"quantity": "suggested max_hot", "value": str(p.suggested_max_hot), "basis": "hot tenants"},
        {"quantity": "open files (ulimit -n)", "value": str(p.open_files), "basis": "3 per hot tenant + 48"},
    ]


@main.command("plan")
@click.option("--tenants", type=click.IntRange(min=0), required=True, help="Number of tenants.")
@click.option("--records-per-tenant", type=click.IntRange(min=0), required=True, help="Records in each tenant.")
@click.option("--dim", type=click.IntRange(1, 65536), required=True, help="Vector dimension.")
@click.option("--hot-fraction", type=click.FloatRange(0, 1), default=DEFAULT_PLAN_HOT_FRACTION, show_default=True,
              help="Fraction of tenants hot (loaded) at once.")
@click.option("--metric", type=click.Choice(METRICS), default=DEFAULT_METRIC, show_default=True,
              help="Distance metric (l2 adds 4 bytes per record to the exact index).")
@click.option("--m", "m", type=click.IntRange(2, MAX_HNSW_M), default=DEFAULT_HNSW_M, show_default=True, help="HNSW M.")
@click.option("--hnsw-threshold", type=click.IntRange(min=0), default=DEFAULT_HNSW_THRESHOLD, show_default=True,
              help="Records above which a tenant uses HNSW.")
@click.option("--record-bytes", type=click.IntRange(min=1), default=None,
              help="msgpack bytes of id + metadata + document per record (default: the measured 165).")
@click.option("--fields", type=click.IntRange(min=0), default=DEFAULT_PLAN_FIELDS, show_default=True,
              help="Metadata keys per record.")
@output([Col("quantity", "QUANTITY"), Col("value", "VALUE", right=True), Col("basis", "BASIS")])
def plan_cmd(tenants: int, records_per_tenant: int, dim: int, hot_fraction: float, metric: str, m: int,
             hnsw_threshold: int, record_bytes: int | None, fields: int) -> Any:
    """Estimate memory for hot tenants and disk for all, from tenantvec's measured
    per-record costs (the constants are printed; see tools/measure_costs.py)."""
    from ._engine.capacity import plan_capacity  # the engine: only this command needs it here

    kw = {} if record_bytes is None else {"record_bytes": record_bytes}
    p = plan_capacity(tenants, records_per_tenant, dim, hot_fraction, metric=metric, m=m,
                      hnsw_threshold=hnsw_threshold, fields=fields, **kw)
    consts = ", ".join(f"{k}={v}" for k, v in p.constants.items() if k != "measured_by")
    footer = [f"\nconstants (measured by {p.constants['measured_by']}): {consts}"]
    return Output(dataclasses.asdict(p), footer, table=_plan_rows(p))


@main.command("demo")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--embeddings", type=click.Choice(["auto", "hashed", "minilm"]), default="auto", show_default=True,
              help="minilm: the real local model (all-MiniLM-L6-v2 int8, needs the [onnx] extra); hashed: "
                   "HashingEmbedder (no model); auto: minilm when the extra is installed, else hashed.")
def demo_cmd(directory: str | None, embeddings: str) -> None:
    """The agent-memory tour (in a temp dir or DIRECTORY): three tenants' memories,
    working-memory sessions, exactly-once consolidation, filtered and weighted recall,
    supersede, forget, the audit log, isolation and offboarding."""
    from ._demo import run_demo

    run_demo(directory, embeddings=embeddings, echo=click.echo)
