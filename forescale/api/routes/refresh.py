"""``POST /v1/services/{name}/refresh``: queue a refit of a service (token needed) and
answer 202 at once with the refresh run to poll (``Location: /v1/runs/refresh-<n>``).

A refresh of a service already queued or running returns that run (``coalesced``); a
full queue answers 429, a closed one 503, both with ``Retry-After`` (seconds).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from forescale.api.contract import RefreshRefused, refresh_id
from forescale.api.deps import RefreshDep, ServiceName, SettingsDep
from forescale.api.errors import ApiError
from forescale.api.schemas import RefreshOut
from forescale.api.security import require_write

router = APIRouter(dependencies=[Depends(require_write)])


@router.post("/v1/services/{name}/refresh", response_model=RefreshOut, status_code=202)
def refresh_service(
    name: ServiceName, settings: SettingsDep, refresh: RefreshDep, response: Response
) -> RefreshOut:
    settings.service(name)
    if refresh is None:
        raise ApiError(503, "Unavailable", "no refresher configured (run the daemon)")
    try:
        submitted = refresh.submit(name)
    except RefreshRefused as exc:
        kind = "TooManyRequests" if exc.status == 429 else "Unavailable"
        raise ApiError(exc.status, kind, str(exc), {"Retry-After": str(exc.retry_after)}) from None
    run_id = refresh_id(submitted.run.id)
    url = f"/v1/runs/{run_id}"
    response.headers["Location"] = url
    return RefreshOut(
        service=name,
        run_id=run_id,
        status=submitted.run.status,  # type: ignore[arg-type]  # pydantic checks it
        coalesced=submitted.coalesced,
        url=url,
    )
