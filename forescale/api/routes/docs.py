"""``/openapi.json``, ``/docs`` and ``/redoc``: our own routes rather than FastAPI's, so
they follow ``protect_reads`` like every other read. Not in the schema themselves."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from forescale.api.security import require_read

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_read)])


@router.get("/openapi.json")
def openapi_schema(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="forescale API")


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title="forescale API")
