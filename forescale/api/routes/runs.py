"""``/v1/runs`` and ``/v1/runs/{run_id}``: change records (integer ids, ``kind:
"change"``) and refresh runs (ids ``refresh-<n>``, ``kind: "refresh"``), one page at a
time, newest first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from forescale.api.contract import REFRESH_PREFIX
from forescale.api.convert import refresh_out, run_out
from forescale.api.deps import StoreDep
from forescale.api.errors import ApiError
from forescale.api.schemas import AnyRunOut, RefreshRunOut, RunOut, RunsOut
from forescale.api.security import require_read

MAX_RUNS_SCANNED = 10_000  # /v1/runs pages no deeper than this many records
MAX_ID = 2**63 - 1  # the largest id a store holds (a signed 64-bit integer)
RUN_ID = Annotated[
    str,
    Path(
        pattern=r"^(refresh-)?[0-9]{1,19}$",
        description="a change record's number, or refresh-<n> for a refresh run",
    ),
]

router = APIRouter(dependencies=[Depends(require_read)])


def parse_run_id(text: str) -> tuple[Literal["change", "refresh"], int]:
    """``"12"`` -> (change, 12); ``"refresh-12"`` -> (refresh, 12); 422 outside 1..2^63-1
    (the path pattern has already refused anything else)."""
    kind: Literal["change", "refresh"] = "change"
    if text.startswith(REFRESH_PREFIX):
        kind, text = "refresh", text[len(REFRESH_PREFIX) :]
    number = int(text)
    if not 1 <= number <= MAX_ID:
        raise ApiError(422, "ValidationError", f"run_id: the number must be 1 to {MAX_ID}")
    return kind, number


@router.get("/v1/runs", response_model=RunsOut)
def runs(
    store: StoreDep,
    service: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_RUNS_SCANNED)] = 0,
    kind: Literal["change", "refresh"] = "change",
) -> RunsOut:
    # One more than asked tells whether there is a next page.
    items: list[RunOut | RefreshRunOut]
    if kind == "refresh":
        refreshes = store.list_refresh_runs(service, limit=offset + limit + 1)[offset:]
        more = len(refreshes) > limit
        items = [refresh_out(r) for r in refreshes[:limit]]
    else:
        records = store.list_changes(service, limit=offset + limit + 1)[offset:]
        more = len(records) > limit
        items = [run_out(r) for r in records[:limit]]
    return RunsOut(
        items=items,
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )


@router.get("/v1/runs/{run_id}", response_model=AnyRunOut)
def run(store: StoreDep, run_id: RUN_ID) -> RunOut | RefreshRunOut:
    kind, number = parse_run_id(run_id)
    if kind == "refresh":
        refreshed = store.refresh_run(number)
        if refreshed is None:
            raise ApiError(404, "NotFound", f"no refresh run {run_id}")
        return refresh_out(refreshed)
    record = store.change(number)
    if record is None:
        raise ApiError(404, "NotFound", f"no run with id {run_id}")
    return run_out(record)
