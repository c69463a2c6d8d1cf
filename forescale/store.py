"""The store: collected samples, forecast runs and planned/applied changes.

SQLAlchemy Core over SQLite (default, a file) or PostgreSQL. Timestamps are stored as
integer Unix seconds (UTC) so no database ever reinterprets a timezone. The schema is
created on first use.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from forescale.codec import decode_meta, encode_meta
from forescale.errors import StoreError
from forescale.forecaster.candidates import CompactForecast
from forescale.records import (
    UNFINISHED,
    ChangeRecord,
    CollectRun,
    ForecastPoint,
    ForecastRun,
    ModeChange,
    RefreshRun,
    RunStamp,
    StoredPrice,
)

log = logging.getLogger("forescale.store")
metadata = sa.MetaData()

samples = sa.Table(
    "samples",
    metadata,
    sa.Column("service", sa.String(64), primary_key=True),
    sa.Column("ts", sa.BigInteger, primary_key=True),  # Unix seconds, UTC
    sa.Column("value", sa.Float, nullable=False),
)

forecast_runs = sa.Table(
    "forecast_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("service", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("as_of", sa.BigInteger, nullable=False),
    sa.Column("history_end", sa.BigInteger, nullable=False),
    sa.Column("model", sa.String(32), nullable=False),
    sa.Column("resolution_s", sa.Integer, nullable=False),
    sa.Column("meta", sa.Text, nullable=False),  # JSON: components, notes, event effects
)

forecast_points = sa.Table(
    "forecast_points",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("forecast_runs.id"), primary_key=True),
    sa.Column("ts", sa.BigInteger, primary_key=True),
    sa.Column("yhat", sa.Float, nullable=False),
    sa.Column("yhat_lower", sa.Float, nullable=False),
    sa.Column("yhat_upper", sa.Float, nullable=False),
    sa.Column("components", sa.Text, nullable=False),  # JSON {name: fraction}
)

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("service", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("forecast_run_id", sa.Integer, sa.ForeignKey("forecast_runs.id"), nullable=True),
    sa.Column("due_at", sa.BigInteger, nullable=False),
    sa.Column("var_file", sa.Text, nullable=False),
    sa.Column("address", sa.String(255), nullable=False),
    sa.Column("from_units", sa.Integer, nullable=False),
    sa.Column("to_units", sa.Integer, nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    # planned (dry-run report) | intent | written | plan-ok | refused | applied | failed
    # | committed | superseded
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("diff", sa.Text, nullable=False),
    sa.Column("trigger", sa.String(255), nullable=False, server_default="cli"),
    sa.Column("plan_summary", sa.Text, nullable=False, server_default=""),
    sa.Column("guard_reasons", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("output_tail", sa.Text, nullable=False, server_default=""),
    sa.Column("commit_sha", sa.String(64), nullable=True),
    sa.Column("finished_at", sa.BigInteger, nullable=True),
    # the attempt this one continues (a retry or a resume after a crash); NULL: the first
    sa.Column("retry_of", sa.Integer, nullable=True),
    # what the variable file held before forescale wrote, and what forescale wrote
    sa.Column("file_sha_before", sa.String(64), nullable=True),
    sa.Column("file_sha_after", sa.String(64), nullable=True),
    sa.Column("literal_before", sa.Text, nullable=True),  # NULL: the variable was absent
    sa.Column("literal_after", sa.Text, nullable=True),
    sa.Column("message", sa.Text, nullable=True),  # the outcome as the operator saw it
)

collect_runs = sa.Table(
    "collect_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("service", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("written", sa.Integer, nullable=False),
    sa.Column("coverage", sa.Float, nullable=True),
    sa.Column("last_sample", sa.BigInteger, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

# One `POST /v1/services/{name}/refresh`: a background refit the API ran (migration 0003).
refresh_runs = sa.Table(
    "refresh_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("service", sa.String(64), nullable=False, index=True),
    sa.Column("requested_at", sa.BigInteger, nullable=False),  # Unix seconds, UTC
    sa.Column("started_at", sa.BigInteger, nullable=True),
    sa.Column("finished_at", sa.BigInteger, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # queued | running | succeeded | failed
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("forecast_run_id", sa.Integer, sa.ForeignKey("forecast_runs.id"), nullable=True),
    # The lease (migration 0006): the server process that queued the run and its last sign of
    # life (Unix seconds, UTC); both NULL on older rows.
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("heartbeat_at", sa.BigInteger, nullable=True),
)

# Shadow mode's promotions and demotions (migration 0005).
mode_changes = sa.Table(
    "mode_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("service", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.BigInteger, nullable=False),  # Unix seconds, UTC
    sa.Column("from_mode", sa.String(20), nullable=True),
    sa.Column("to_mode", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

# A unit's price looked up once with the AWS Pricing API, with its date (migration 0004).
prices = sa.Table(
    "prices",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # aws:ec2:<type>:<region>:<os>:<tenancy>
    sa.Column("per_hour", sa.Float, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("fetched_at", sa.BigInteger, nullable=False),  # Unix seconds, UTC
    sa.Column("description", sa.Text, nullable=False),  # what the price list said it is
)


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other databases or :memory:);
    lock files live next to it."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.endswith(":memory:"):
        return None
    # Symlinks resolved: two paths to one database share its locks (a link to the store
    # made a second leader)
    path = Path(url[len(prefix) :].split("?", 1)[0])
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _epoch(when: dt.datetime) -> int:
    if when.tzinfo is None:
        raise StoreError("naive datetime given to the store; all times must be UTC-aware")
    return int(when.timestamp())


def _from_epoch(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


class Store:
    """Database access. Build with :meth:`open`; the engine is injected for tests."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (and create on first use) the store at ``url``."""
        db_file = sqlite_file(url)
        try:
            if db_file is not None:
                db_file.parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, future=True)
            migrate(engine)
        except (SQLAlchemyError, ImportError, OSError) as exc:
            raise StoreError(f"cannot open {_where(url)}: {_one_line(exc)}") from None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            url = self.engine.url.render_as_string(hide_password=False)
            db_file = sqlite_file(url)
            if db_file is not None and not db_file.exists():  # not "read-only", as SQLite says
                raise StoreError(
                    f"{_where(url)}: the store file is gone (moved or deleted while forescale "
                    "ran); put it back, or restart to start a new store"
                ) from None
            raise StoreError(f"{_where(url)}: {_one_line(exc)}") from None

    # -- samples ---------------------------------------------------------------------
    def upsert_samples(self, service: str, series: pd.DataFrame) -> int:
        """Insert or replace observed samples (NaN rows are gaps and are not stored).

        Idempotent: storing the same samples twice leaves one row per timestamp.
        Returns the number of samples written.
        """
        observed = series[np.isfinite(series["y"].to_numpy(dtype=float))]
        if observed.empty:
            return 0
        seconds = (observed["ds"].astype("int64") // 10**9).to_numpy()
        rows = [
            {"service": service, "ts": int(ts), "value": float(v)}
            for ts, v in zip(seconds, observed["y"].to_numpy(dtype=float), strict=True)
        ]
        with self._begin() as conn:
            stmt = self._upsert(conn, samples, ["service", "ts"], ["value"])
            for chunk in range(0, len(rows), 5000):
                conn.execute(stmt, rows[chunk : chunk + 5000])
        return len(rows)

    def _upsert(
        self, conn: sa.Connection, table: sa.Table, keys: Sequence[str], update: Sequence[str]
    ) -> Any:
        name = conn.dialect.name
        if name == "sqlite":
            ins = sqlite.insert(table)
            return ins.on_conflict_do_update(
                index_elements=list(keys), set_={c: ins.excluded[c] for c in update}
            )
        if name == "postgresql":
            pins = postgresql.insert(table)
            return pins.on_conflict_do_update(
                index_elements=list(keys), set_={c: pins.excluded[c] for c in update}
            )
        raise StoreError(f"unsupported database {name!r} (use SQLite or PostgreSQL)")

    def load_samples(
        self, service: str, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> pd.DataFrame:
        """Stored samples of ``service`` in ``[start, end]`` as ``ds`` (UTC), ``y``."""
        query = sa.select(samples.c.ts, samples.c.value).where(samples.c.service == service)
        if start is not None:
            query = query.where(samples.c.ts >= _epoch(start))
        if end is not None:
            query = query.where(samples.c.ts <= _epoch(end))
        with self._begin() as conn:
            rows = conn.execute(query.order_by(samples.c.ts)).all()
        ts = np.array([r[0] for r in rows], dtype="int64")
        return pd.DataFrame(
            {
                "ds": pd.to_datetime(ts, unit="s", utc=True),
                "y": np.array([r[1] for r in rows], dtype=float),
            }
        )

    def last_sample_time(self, service: str) -> dt.datetime | None:
        with self._begin() as conn:
            value = conn.execute(
                sa.select(sa.func.max(samples.c.ts)).where(samples.c.service == service)
            ).scalar()
        return None if value is None else _from_epoch(int(value))

    def record_collect(
        self,
        service: str,
        *,
        at: dt.datetime,
        written: int,
        coverage: float | None,
        last_sample: dt.datetime | None,
        error: str | None,
    ) -> None:
        with self._begin() as conn:
            conn.execute(
                collect_runs.insert().values(
                    service=service,
                    at=_epoch(at),
                    written=written,
                    coverage=coverage,
                    last_sample=None if last_sample is None else _epoch(last_sample),
                    error=error,
                )
            )

    def last_collect(self, service: str) -> CollectRun | None:
        """The newest collect run of ``service``, or None."""
        with self._begin() as conn:
            row = (
                conn.execute(
                    sa.select(collect_runs)
                    .where(collect_runs.c.service == service)
                    .order_by(collect_runs.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return CollectRun(
            id=int(row["id"]),
            service=str(row["service"]),
            at=_from_epoch(row["at"]),
            written=int(row["written"]),
            coverage=row["coverage"],
            last_sample=None if row["last_sample"] is None else _from_epoch(row["last_sample"]),
            error=row["error"],
        )

    # -- forecasts -------------------------------------------------------------------
    def save_forecast_run(self, run: ForecastRun) -> int:
        """Store one forecast run and its points (``run.frame``); returns the run id."""
        if run.frame is None:
            raise StoreError("a forecast run is stored with its points")
        frame = run.frame
        components = [c for c in run.components if c in frame.columns]
        meta = encode_meta(
            components=run.components,
            notes=run.notes,
            interval_width=run.interval_width,
            event_effects=run.event_effects,
            choice=run.choice,
            live=run.live,
            candidates=run.candidates,
            candidate_errors=run.candidate_errors,
            ceiling=run.ceiling,
        )
        with self._begin() as conn:
            inserted = conn.execute(
                forecast_runs.insert().values(
                    service=run.service,
                    created_at=_epoch(run.created_at),
                    as_of=_epoch(run.as_of),
                    history_end=_epoch(run.history_end),
                    model=run.model,
                    resolution_s=int(run.resolution.total_seconds()),
                    meta=meta,
                )
            ).inserted_primary_key
            if inserted is None:
                raise StoreError("the database returned no id for the new forecast run")
            run_id = int(inserted[0])
            seconds = (frame["ds"].astype("int64") // 10**9).to_numpy()
            comp = frame[components].to_numpy(dtype=float) if components else None
            values = frame[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(dtype=float)
            points = [
                {
                    "run_id": run_id,
                    "ts": int(ts),
                    "yhat": float(values[i, 0]),
                    "yhat_lower": float(values[i, 1]),
                    "yhat_upper": float(values[i, 2]),
                    "components": json.dumps(
                        {c: round(float(comp[i, j]), 6) for j, c in enumerate(components)}
                        if comp is not None
                        else {},
                        sort_keys=True,
                    ),
                }
                for i, ts in enumerate(seconds)
            ]
            if points:
                conn.execute(forecast_points.insert(), points)
        return run_id

    def candidate_runs(
        self, service: str, since: dt.datetime
    ) -> list[tuple[dt.datetime, Mapping[str, CompactForecast]]]:
        """(as_of, the candidates' compact forecasts) of each run made since ``since``:
        the live record's raw material (runs without candidates are skipped)."""
        query = (
            sa.select(forecast_runs.c.as_of, forecast_runs.c.meta)
            .where(forecast_runs.c.service == service)
            .where(forecast_runs.c.as_of >= _epoch(since))
            .order_by(forecast_runs.c.as_of)
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        out = []
        for as_of, meta in rows:
            candidates = decode_meta(meta)["candidates"]
            if candidates:
                out.append((_from_epoch(int(as_of)), candidates))
        return out

    def forecast_run(self, run_id: int, *, points: bool = True) -> ForecastRun | None:
        """Forecast run ``run_id`` (with its points unless ``points=False``), or None."""
        return self._run(forecast_runs.c.id == run_id, points=points)

    def forecast_before(
        self, service: str, before: dt.datetime, *, points: bool = True
    ) -> ForecastRun | None:
        """The newest forecast run of ``service`` made before ``before`` (with its points
        unless ``points=False``), or None."""
        newest = (
            sa.select(sa.func.max(forecast_runs.c.id))
            .where(forecast_runs.c.service == service)
            .where(forecast_runs.c.as_of < _epoch(before))
            .scalar_subquery()
        )
        return self._run(forecast_runs.c.id == newest, points=points)

    def latest_forecast(self, service: str, *, points: bool = True) -> ForecastRun | None:
        """The newest forecast run of ``service`` (with its points unless ``points=False``)."""
        newest = (
            sa.select(sa.func.max(forecast_runs.c.id))
            .where(forecast_runs.c.service == service)
            .scalar_subquery()
        )
        return self._run(forecast_runs.c.id == newest, points=points)

    def _run(self, where: Any, *, points: bool) -> ForecastRun | None:
        with self._begin() as conn:
            row = conn.execute(sa.select(forecast_runs).where(where)).mappings().first()
            if row is None:
                return None
            records = (
                [
                    dict(r)
                    for r in conn.execute(
                        sa.select(forecast_points)
                        .where(forecast_points.c.run_id == row["id"])
                        .order_by(forecast_points.c.ts)
                    ).mappings()
                ]
                if points
                else None
            )
        return ForecastRun(
            id=int(row["id"]),
            service=str(row["service"]),
            created_at=_from_epoch(row["created_at"]),
            as_of=_from_epoch(row["as_of"]),
            history_end=_from_epoch(row["history_end"]),
            model=str(row["model"]),
            resolution=dt.timedelta(seconds=int(row["resolution_s"])),
            frame=None if records is None else _points_frame(records),
            **decode_meta(row["meta"]),
        )

    def latest_forecast_point(self, service: str, at: dt.datetime) -> ForecastPoint | None:
        """The newest run's forecast step that holds ``at``, or None: one row read instead
        of the whole run."""
        newest = (
            sa.select(sa.func.max(forecast_runs.c.id))
            .where(forecast_runs.c.service == service)
            .scalar_subquery()
        )
        with self._begin() as conn:
            resolution = conn.execute(
                sa.select(forecast_runs.c.resolution_s).where(forecast_runs.c.id == newest)
            ).scalar()
            row = (
                conn.execute(
                    sa.select(forecast_points)
                    .where(forecast_points.c.run_id == newest)
                    .where(forecast_points.c.ts <= _epoch(at))
                    .order_by(forecast_points.c.ts.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        if row is None or resolution is None or row["ts"] + int(resolution) <= _epoch(at):
            return None
        return ForecastPoint(
            ts=_from_epoch(row["ts"]),
            yhat=float(row["yhat"]),
            yhat_lower=float(row["yhat_lower"]),
            yhat_upper=float(row["yhat_upper"]),
        )

    def latest_forecast_id(self, service: str) -> int | None:
        """The id of the newest forecast run of ``service`` (one indexed query)."""
        with self._begin() as conn:
            value = conn.execute(
                sa.select(sa.func.max(forecast_runs.c.id)).where(forecast_runs.c.service == service)
            ).scalar()
        return None if value is None else int(value)

    def latest_run_stamp(self, service: str) -> RunStamp | None:
        """The newest forecast run of ``service`` without its points or its (large) meta:
        for listings that need only its id and times."""
        columns = [c for c in forecast_runs.c if c.name != "meta"]
        with self._begin() as conn:
            run = (
                conn.execute(
                    sa.select(*columns)
                    .where(forecast_runs.c.service == service)
                    .order_by(forecast_runs.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        if run is None:
            return None
        return RunStamp(
            id=int(run["id"]),
            service=str(run["service"]),
            created_at=_from_epoch(run["created_at"]),
            as_of=_from_epoch(run["as_of"]),
            history_end=_from_epoch(run["history_end"]),
            model=str(run["model"]),
            resolution=dt.timedelta(seconds=int(run["resolution_s"])),
        )

    # -- changes ---------------------------------------------------------------------
    def record_change(self, record: ChangeRecord, *, created_at: dt.datetime) -> int:
        with self._begin() as conn:
            new_id = conn.execute(
                changes.insert().values(
                    service=record.service,
                    created_at=_epoch(created_at),
                    forecast_run_id=record.forecast_run_id,
                    due_at=_epoch(record.due_at),
                    var_file=record.var_file,
                    address=record.address,
                    from_units=record.from_units,
                    to_units=record.to_units,
                    direction=record.direction,
                    reason=record.reason,
                    mode=record.mode,
                    status=record.status,
                    diff=record.diff,
                    trigger=record.trigger,
                    plan_summary=record.plan_summary,
                    guard_reasons=json.dumps(list(record.guard_reasons)),
                    exit_code=record.exit_code,
                    output_tail=record.output_tail,
                    commit_sha=record.commit_sha,
                    finished_at=None if record.finished_at is None else _epoch(record.finished_at),
                    retry_of=record.retry_of,
                    file_sha_before=record.file_sha_before,
                    literal_before=record.literal_before,
                    file_sha_after=record.file_sha_after,
                    literal_after=record.literal_after,
                    message=record.message,
                )
            ).inserted_primary_key
        if new_id is None:
            raise StoreError("the database returned no id for the new change record")
        return int(new_id[0])

    def update_change(self, change_id: int, **fields: Any) -> None:
        """Record an outcome on an existing change (status, exit_code, output_tail, ...)."""
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "guard_reasons":
                value = json.dumps(list(value))
            elif key == "finished_at" and value is not None:
                value = _epoch(value)
            values[key] = value
        with self._begin() as conn:
            conn.execute(changes.update().where(changes.c.id == change_id).values(**values))

    def pending_change(self, service: str) -> ChangeRecord | None:
        """The newest non-dry-run change of ``service`` if it did not finish (resume it)."""
        query = (
            sa.select(changes)
            .where(changes.c.service == service, changes.c.status != "planned")
            .order_by(changes.c.id.desc())
            .limit(1)
        )
        with self._begin() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        records = self._records(rows)
        return records[0] if records and records[0].status in UNFINISHED else None

    def change(self, change_id: int) -> ChangeRecord | None:
        """One change record by id (None: no such record)."""
        with self._begin() as conn:
            query = sa.select(changes).where(changes.c.id == change_id)
            rows = [dict(r) for r in conn.execute(query).mappings()]
        records = self._records(rows)
        return records[0] if records else None

    def list_changes(self, service: str | None = None, limit: int = 100) -> list[ChangeRecord]:
        """Newest first."""
        query = sa.select(changes).order_by(changes.c.id.desc()).limit(limit)
        if service is not None:
            query = query.where(changes.c.service == service)
        with self._begin() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        return self._records(rows)

    @staticmethod
    def _records(rows: list[dict[str, Any]]) -> list[ChangeRecord]:
        return [
            ChangeRecord(
                id=r["id"],
                service=r["service"],
                created_at=_from_epoch(r["created_at"]),
                forecast_run_id=r["forecast_run_id"],
                due_at=_from_epoch(r["due_at"]),
                var_file=r["var_file"],
                address=r["address"],
                from_units=r["from_units"],
                to_units=r["to_units"],
                direction=r["direction"],
                reason=r["reason"],
                mode=r["mode"],
                status=r["status"],
                diff=r["diff"],
                trigger=r["trigger"],
                plan_summary=r["plan_summary"],
                guard_reasons=tuple(json.loads(r["guard_reasons"])),
                exit_code=r["exit_code"],
                output_tail=r["output_tail"],
                commit_sha=r["commit_sha"],
                finished_at=None if r["finished_at"] is None else _from_epoch(r["finished_at"]),
                retry_of=r["retry_of"],
                file_sha_before=r["file_sha_before"],
                literal_before=r["literal_before"],
                file_sha_after=r["file_sha_after"],
                literal_after=r["literal_after"],
                message=r["message"] or "",
            )
            for r in rows
        ]

    # -- mode changes (shadow mode's promotions and demotions) ---------------------------
    def record_mode_change(self, change: ModeChange) -> int:
        """Append ``change``; returns its id."""
        with self._begin() as conn:
            new_id = conn.execute(
                mode_changes.insert().values(
                    service=change.service,
                    at=_epoch(change.at),
                    from_mode=change.from_mode,
                    to_mode=change.to_mode,
                    reason=change.reason,
                )
            ).inserted_primary_key
        assert new_id is not None
        return int(new_id[0])

    def list_mode_changes(self, service: str | None = None, limit: int = 100) -> list[ModeChange]:
        """The newest ``limit`` mode changes (of ``service``), newest first."""
        query = sa.select(mode_changes).order_by(mode_changes.c.id.desc()).limit(limit)
        if service is not None:
            query = query.where(mode_changes.c.service == service)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            ModeChange(
                id=int(r["id"]),
                service=r["service"],
                at=_from_epoch(int(r["at"])),
                from_mode=r["from_mode"],
                to_mode=r["to_mode"],
                reason=r["reason"],
            )
            for r in rows
        ]

    def latest_mode_change(self, service: str) -> ModeChange | None:
        found = self.list_mode_changes(service, limit=1)
        return found[0] if found else None

    # -- prices (AWS Pricing API lookups, kept so the API is asked once) -----------------
    def price(self, key: str) -> StoredPrice | None:
        """The price stored under ``key``, or None when it was never looked up."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(prices).where(prices.c.key == key)).mappings().first()
        if row is None:
            return None
        return StoredPrice(
            key=row["key"],
            per_hour=float(row["per_hour"]),
            currency=row["currency"],
            fetched_at=_from_epoch(int(row["fetched_at"])),
            description=row["description"],
        )

    def save_price(self, price: StoredPrice) -> None:
        """Store ``price`` under its key, replacing an older lookup of the same key."""
        with self._begin() as conn:
            stmt = self._upsert(
                conn, prices, ["key"], ["per_hour", "currency", "fetched_at", "description"]
            )
            conn.execute(
                stmt,
                {
                    "key": price.key,
                    "per_hour": price.per_hour,
                    "currency": price.currency,
                    "fetched_at": _epoch(price.fetched_at),
                    "description": price.description,
                },
            )

    # -- refresh runs (API-requested refits) -------------------------------------------
    # A run is leased to its ``owner`` (a server process): the owner beats (``heartbeat_at``)
    # while the run is queued or running; any server fails a run whose heartbeat is older
    # than the lease (:meth:`abandon_stale_refresh_runs`). Only the owner finishes its run.
    def create_refresh_run(
        self, service: str, *, requested_at: dt.datetime, owner: str | None = None
    ) -> RefreshRun:
        """Record a queued refresh of ``service`` leased to ``owner`` (its first heartbeat
        is ``requested_at``); returns it with its id."""
        with self._begin() as conn:
            new_id = conn.execute(
                refresh_runs.insert().values(
                    service=service,
                    requested_at=_epoch(requested_at),
                    status="queued",
                    owner=owner,
                    heartbeat_at=_epoch(requested_at),
                )
            ).inserted_primary_key
        if new_id is None:
            raise StoreError("the database returned no id for the new refresh run")
        run = self.refresh_run(int(new_id[0]))
        if run is None:
            raise StoreError(f"refresh run {new_id[0]} vanished right after it was written")
        return run

    def start_refresh_run(
        self, run_id: int, *, started_at: dt.datetime, owner: str | None = None
    ) -> bool:
        """Mark ``owner``'s refresh run as running (a heartbeat too); False when the run is
        not ``owner``'s (nothing changed)."""
        with self._begin() as conn:
            done = conn.execute(
                refresh_runs.update()
                .where(refresh_runs.c.id == run_id, _owned_by(owner))
                .values(
                    status="running",
                    started_at=_epoch(started_at),
                    heartbeat_at=_epoch(started_at),
                )
            )
        return done.rowcount == 1

    def finish_refresh_run(
        self,
        run_id: int,
        *,
        finished_at: dt.datetime,
        error: str | None = None,
        forecast_run_id: int | None = None,
        owner: str | None = None,
    ) -> bool:
        """Record a refresh run's outcome: ``failed`` with ``error``, else ``succeeded``.

        Only ``owner`` (or anyone, for a run from before owners were recorded) finishes a
        run, and its outcome replaces an ``abandoned`` failure: an owner swept while it was
        paused still ran the refit. False when the run is another owner's (nothing changed).
        """
        with self._begin() as conn:
            done = conn.execute(
                refresh_runs.update()
                .where(refresh_runs.c.id == run_id, _owned_by(owner))
                .values(
                    status="failed" if error is not None else "succeeded",
                    finished_at=_epoch(finished_at),
                    error=error,
                    forecast_run_id=forecast_run_id,
                )
            )
        return done.rowcount == 1

    def beat_refresh_runs(self, owner: str, at: dt.datetime) -> int:
        """Heartbeat: ``owner``'s queued and running runs were alive ``at``; returns how many
        runs it beat (a run already failed as abandoned is not revived)."""
        with self._begin() as conn:
            done = conn.execute(
                refresh_runs.update()
                .where(refresh_runs.c.owner == owner, refresh_runs.c.status.in_(_UNFINISHED))
                .values(heartbeat_at=_epoch(at))
            )
        return int(done.rowcount)

    def abandon_stale_refresh_runs(
        self, before: dt.datetime, *, at: dt.datetime
    ) -> list[RefreshRun]:
        """Fail, at ``at``, every queued or running run (any owner) whose last heartbeat is
        older than ``before`` (now minus the lease), with the error
        ``abandoned: the server that ran this refresh (<owner>) stopped without finishing it
        (no heartbeat since <UTC time>); ask again``. A row without a heartbeat (from before
        migration 0006) counts from ``requested_at`` or ``started_at``, whichever is later,
        and names its owner "an older version". One UPDATE: of several servers sweeping at
        once, each run is abandoned by exactly one. Returns the runs it failed, in id order."""
        last_beat = sa.func.coalesce(
            refresh_runs.c.heartbeat_at,
            sa.case(
                (
                    refresh_runs.c.started_at > refresh_runs.c.requested_at,
                    refresh_runs.c.started_at,
                ),
                else_=refresh_runs.c.requested_at,
            ),
        )
        with self._begin() as conn:
            error = (
                sa.literal("abandoned: the server that ran this refresh (", sa.String)
                + sa.func.coalesce(refresh_runs.c.owner, "an older version")
                + ") stopped without finishing it (no heartbeat since "
                + _utc_iso(conn.dialect.name, last_beat)
                + "); ask again"
            )
            rows = conn.execute(
                refresh_runs.update()
                .where(refresh_runs.c.status.in_(_UNFINISHED), last_beat < _epoch(before))
                .values(status="failed", finished_at=_epoch(at), error=error)
                .returning(*refresh_runs.c)
            ).mappings()
            swept = sorted((dict(r) for r in rows), key=lambda r: int(r["id"]))
        return self._refresh_runs(swept)

    def refresh_run(self, run_id: int) -> RefreshRun | None:
        """One refresh run by id (None: no such run)."""
        with self._begin() as conn:
            rows = [
                dict(r)
                for r in conn.execute(
                    sa.select(refresh_runs).where(refresh_runs.c.id == run_id)
                ).mappings()
            ]
        runs = self._refresh_runs(rows)
        return runs[0] if runs else None

    def list_refresh_runs(self, service: str | None = None, limit: int = 100) -> list[RefreshRun]:
        """Refresh runs, newest first."""
        query = sa.select(refresh_runs).order_by(refresh_runs.c.id.desc()).limit(limit)
        if service is not None:
            query = query.where(refresh_runs.c.service == service)
        with self._begin() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        return self._refresh_runs(rows)

    @staticmethod
    def _refresh_runs(rows: list[dict[str, Any]]) -> list[RefreshRun]:
        def when(value: int | None) -> dt.datetime | None:
            return None if value is None else _from_epoch(value)

        return [
            RefreshRun(
                id=r["id"],
                service=r["service"],
                requested_at=_from_epoch(r["requested_at"]),
                status=r["status"],
                started_at=when(r["started_at"]),
                finished_at=when(r["finished_at"]),
                error=r["error"],
                forecast_run_id=r["forecast_run_id"],
                owner=r["owner"],
                heartbeat_at=when(r["heartbeat_at"]),
            )
            for r in rows
        ]


_UNFINISHED = ("queued", "running")  # refresh run statuses a lease covers


def _owned_by(owner: str | None) -> sa.ColumnElement[bool]:
    """Refresh runs ``owner`` may start or finish: its own and those without an owner."""
    ownerless = refresh_runs.c.owner.is_(None)
    return ownerless if owner is None else sa.or_(refresh_runs.c.owner == owner, ownerless)


def _utc_iso(dialect: str, seconds: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """SQL for Unix ``seconds`` as ``2024-03-01T12:00:00Z`` (how the API writes times)."""
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m-%dT%H:%M:%SZ", seconds, "unixepoch", type_=sa.String)
    if dialect == "postgresql":
        utc = sa.func.timezone("UTC", sa.func.to_timestamp(seconds))
        return sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS"Z"', type_=sa.String)
    raise StoreError(f"unsupported database {dialect!r} (use SQLite or PostgreSQL)")


def _points_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "ds": pd.to_datetime([r["ts"] for r in records], unit="s", utc=True),
            "yhat": [r["yhat"] for r in records],
            "yhat_lower": [r["yhat_lower"] for r in records],
            "yhat_upper": [r["yhat_upper"] for r in records],
        }
    )
    comps = [json.loads(r["components"]) for r in records]
    for name in sorted({k for c in comps for k in c}):
        frame[name] = [c.get(name, 0.0) for c in comps]
    return frame


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates it on first use)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        if "alembic_version" not in tables and tables & set(metadata.tables):
            raise StoreError(
                "this store was created before schema migrations existed; start a new store "
                "(its history can be collected again) or run `alembic stamp` after checking it"
            )
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


# What a database error means for the operator, by a fragment of the driver's message.
_ADVICE = (
    ("malformed", "the file is corrupt: restore it from a backup or start a new store"),
    ("not a database", "the file is not a SQLite database: check store_url"),
    ("readonly", "the file or its directory is read-only: give forescale write access"),
    ("read-only", "the file or its directory is read-only: give forescale write access"),
    ("disk is full", "the disk is full: free space, then run again"),
    ("unable to open", "the file cannot be opened: check the path and its permissions"),
    ("locked", "another process holds the database lock: retry, or stop the other process"),
    ("connection", "the database server cannot be reached: check the URL and the server"),
)


def _where(url: str) -> str:
    db_file = sqlite_file(url)
    return f"store {db_file}" if db_file is not None else f"store {_redact(url)}"


def _one_line(exc: BaseException) -> str:
    """The driver's own message (never the SQL statement or its rows) and what to do; the
    full error goes to the debug log."""
    log.debug("store error", exc_info=exc)
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split()) or type(orig).__name__
    text = text.split(" [SQL:")[0].split(" (Background on this error")[0]
    if len(text) > 160:
        text = text[:157] + "..."
    lowered = text.lower()
    advice = next((a for key, a in _ADVICE if key in lowered), "")
    return f"{text}; {advice}" if advice else text


def _redact(url: str) -> str:
    """Hide a password in a database URL for messages."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL that does not parse is shown as-is
        return url
