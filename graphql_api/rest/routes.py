"""The REST routes for the app: one Starlette Route per path, and the OpenAPI document.

The app wires them in with `rest_routes(settings)`, puts a TransportGuard on REST_PATHS
(JSON bodies, the body size limit) and refuses bad tokens on those paths in REST's shape.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from graphql_api.settings import Settings

from .endpoint import Endpoint, Operation
from .errors import REST_PATHS
from .openapi import openapi_json
from .operations import OPERATIONS

__all__ = ["REST_PATHS", "rest_routes"]

OPENAPI_ROUTE = "/openapi.json"


def rest_routes(settings: Settings) -> list[BaseRoute]:
    by_path: dict[str, list[Operation]] = {}
    for operation in OPERATIONS:
        by_path.setdefault(operation.path, []).append(operation)
    # The document as this service runs it: its page sizes are the configured ones.
    document = openapi_json(settings.limits).encode()

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    return [
        *(Route(path, Endpoint(operations)) for path, operations in by_path.items()),
        Route(OPENAPI_ROUTE, openapi, methods=["GET"]),
    ]
