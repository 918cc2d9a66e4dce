"""The ``tenantvec`` command line: inspect, verify, compact, export and import a store.

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
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click

from . import __version__
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

ROOT_ENV = "TENANTVEC_ROOT"
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
                    click.echo(_table(shown, columns or [Col(k) for k in shown[0]]))
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


def _each(items: Sequence[str], label: str) -> Iterator[str]:
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

    Read commands (ls, info, stats, get, search, verify, export, compact --dry-run)
    open the store read-only and work while an application holds it open for writing.
    Commands that write (import, drop, activate, deactivate, compact, verify --fix)
    need the writer lock and say who holds it when they cannot get it.
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


def _summary_row(s: Any) -> dict:
    row = {"tenant": s.tenant, "count": s.count, "state": s.state, "dim": s.dim, "metric": s.metric,
           "index": s.index_kind, "bytes": s.bytes_on_disk, "last_write": s.last_write}
    if s.error:
        row["error"] = s.error
    return row


@main.command("ls")
@output(_LS_COLUMNS)
@pass_ctx
def ls_cmd(cfg: _Ctx) -> Any:
    """List tenants: records, state (hot/cold/inactive), dimension, disk bytes, last write."""
    with cfg.store() as store:
        return [_summary_row(s) for s in store.tenant_summaries()]


@main.command("info")
@click.argument("tenant")
@output(formats={"bytes": _bytes, "memory_bytes": _bytes, "last_write": _time,
                 "deleted_fraction": lambda v: f"{v:.1%}"})
@pass_ctx
def info_cmd(cfg: _Ctx, tenant: str) -> Any:
    """Everything known about one tenant: size, index and its parameters, tombstones,
    deleted fraction, operation sequence and index checkpoint."""
    with cfg.store() as store:
        state = store.tenant_summaries([tenant])[0].state
        info = store.tenant(tenant).info()
    return {
        "tenant": info.tenant, "count": info.count, "state": state, "dim": info.dim, "metric": info.metric,
        "index": info.index_kind, "index_params": info.index_params, "deleted": info.deleted,
        "deleted_fraction": info.deleted_fraction, "bytes": info.bytes_on_disk, "memory_bytes": info.memory_bytes,
        "seq": info.seq, "checkpoint_seq": info.checkpoint_seq, "last_write": info.last_write,
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
        if not store.has_tenant(tenant):
            store.tenant(tenant)  # raises TenantNotFound with the usual message
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError(f"refusing to drop tenant {tenant!r} without --yes")
            click.confirm(f"Drop tenant {tenant!r} and all its files?", abort=True, err=True)
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
              help="hashed: bag-of-words vectors (dim 64); minilm: real all-MiniLM-L6-v2 vectors if the "
                   "shared data file is present; auto: minilm when available.")
def demo_cmd(directory: str | None, embeddings: str) -> None:
    """Create a small store (in a temp dir or DIRECTORY), write memories for three
    tenants, query them, and show isolation, hot/cold eviction and store stats."""
    from ._demo import run_demo

    run_demo(directory, embeddings=embeddings, echo=click.echo)
