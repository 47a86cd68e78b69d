"""The ASGI app: routes, the middleware every request passes, and the lifespan that owns clients."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from graphql_api.admission import Admission, AdmissionGuard
from graphql_api.auth import SigningKeysUnavailableError
from graphql_api.auth.backend import (
    MISSING_TOKEN,
    CognitoBackend,
    authentication_error_handler,
    identity_of,
    refusal,
)
from graphql_api.context import Context, build_context
from graphql_api.errors import ChatError
from graphql_api.gql.executor import GraphQLRunner
from graphql_api.gql.http import GraphQLEndpoint
from graphql_api.gql.limits import DocumentLimits
from graphql_api.gql.schema import build_schema
from graphql_api.gql.trusted import PACKAGED_MANIFEST, ManifestError
from graphql_api.gql.websocket import WaitUntil, WebSocketEndpoint, wall_clock_until
from graphql_api.graphiql import GraphiQL
from graphql_api.observability.middleware import RequestTelemetry
from graphql_api.observability.telemetry import Telemetry
from graphql_api.rest.routes import REST_PATHS, rest_routes
from graphql_api.services import AppState, Services, open_services
from graphql_api.settings import Settings, SettingsError
from graphql_api.shared import SHARED_PATHS, SharedHeaders, logged_path, shared_routes
from graphql_api.storage.client import utc_now
from graphql_api.transport import TransportGuard, graphql_paths

# Probes must answer well within a load balancer's timeout, whatever DynamoDB is doing.
READINESS_DEADLINE_SECONDS = 2.0
GRAPHQL_PATH = "/graphql"


def create_app(
    settings: Settings,
    *,
    aws_credentials: tuple[str, str] | None = None,
    graphiql_headers: dict[str, str] | None = None,
    graphiql_query: str | None = None,
    telemetry: Telemetry | None = None,
    clock: Callable[[], datetime] = utc_now,
    wait_until: WaitUntil = wall_clock_until,
) -> Starlette:
    """The service. `graphiql_headers` and `graphiql_query` are what GraphiQL's headers and
    query editors start with: dev use only; `telemetry` replaces the one built from settings
    (tests pass an in-memory span exporter); `clock` is what the service takes for now (tests
    move it to see time pass); `wait_until(moment)` returns when the wall clock reaches
    `moment`, which is how a WebSocket connection waits for its token to expire (tests release
    it themselves)."""
    telemetry = telemetry or Telemetry.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[AppState]:
        async with (
            open_services(
                settings, aws_credentials=aws_credentials, clock=clock, metrics=telemetry.metrics
            ) as services,
            telemetry.running(jwks=services.jwks),
        ):
            if settings.gc_freeze_after_startup:
                gc.freeze()
            yield {"services": services}

    graphiql = (
        GraphiQL.load(endpoint=GRAPHQL_PATH, headers=graphiql_headers, default_query=graphiql_query)
        if settings.graphiql_enabled
        else None
    )
    runner = graphql_runner(settings)
    admission = admission_of(settings, telemetry)
    return Starlette(
        routes=[
            Route(GRAPHQL_PATH, graphql_endpoint(runner, graphiql=graphiql)),
            # The same path over WebSocket, every operation run by the same runner.
            WebSocketRoute(
                GRAPHQL_PATH,
                WebSocketEndpoint(
                    runner,
                    settings=settings.subscriptions,
                    telemetry=telemetry,
                    admission=admission,
                    allowed_origins=settings.cors_allow_origins,
                    wait_until=wait_until,
                ),
            ),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *(graphiql.routes() if graphiql else []),
            *rest_routes(settings),
            # Share links' public route: no token, every answer with SharedHeaders' headers.
            *shared_routes(),
            *_metrics_route(telemetry),
        ],
        middleware=middleware(settings, telemetry, admission=admission),
        lifespan=lifespan,
    )


def _metrics_route(telemetry: Telemetry) -> list[Route]:
    endpoint = telemetry.metrics_endpoint
    return [] if endpoint is None else [Route("/metrics", endpoint)]


def admission_of(settings: Settings, telemetry: Telemetry) -> Admission:
    """The process's places, which HTTP requests and WebSocket operations share."""
    return Admission(
        limit=settings.concurrency_limit,
        wait_seconds=settings.admission_wait_seconds,
        deadline_seconds=settings.dynamodb.deadline,
        on_places=telemetry.metrics.admission_places,
    )


def middleware(
    settings: Settings, telemetry: Telemetry, *, admission: Admission
) -> list[Middleware]:
    """What every HTTP request passes before its route, outermost first."""
    # Outermost, so the request's line, metrics and span cover every refusal too.
    layers = [
        Middleware(RequestTelemetry, telemetry=telemetry, logged_path=logged_path),
        Middleware(SharedHeaders),
    ]
    if settings.cors_allow_origins:
        layers.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_allow_origins),
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
                expose_headers=["X-Request-Id"],
                max_age=600,
            )
        )
    # Shedding first, after CORS (a browser must be able to read the 503): a request past the
    # process's places is answered before anything reads it.
    layers.append(
        Middleware(
            AdmissionGuard,
            admission=admission,
            transports=[
                ("graphql", graphql_paths(GRAPHQL_PATH)),
                ("rest", REST_PATHS),
                ("shared", SHARED_PATHS),
            ],
            on_shed=telemetry.metrics.shed,
        )
    )
    # Then the guard: an oversized or non-JSON body is refused before any token work.
    layers.append(
        Middleware(
            TransportGuard,
            transports=(graphql_paths(GRAPHQL_PATH), REST_PATHS),
            max_body_bytes=settings.max_body_bytes,
        )
    )
    layers.append(
        Middleware(
            AuthenticationMiddleware,
            # A share link is its own key: a token sent to its route is not even looked at.
            backend=CognitoBackend(public=SHARED_PATHS.covers),
            on_error=authentication_error_handler([REST_PATHS]),
        )
    )
    return layers


def graphql_runner(settings: Settings) -> GraphQLRunner:
    """The one runner of GraphQL over HTTP and over WebSocket alike, so the limits, the caches
    and the trusted documents hold on both."""
    manifests = [PACKAGED_MANIFEST, *map(Path, settings.trusted_documents_manifests)]
    try:
        return GraphQLRunner(
            build_schema(settings),
            DocumentLimits(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
                max_tokens=settings.max_tokens,
                max_bytes=settings.max_query_bytes,
                allow_introspection=settings.introspection_enabled,
                cache_size=settings.graphql_document_cache_size,
            ),
            manifests=manifests,
            trusted_only=settings.trusted_documents_only,
        )
    except ManifestError as exc:
        # A document a client ships that this schema cannot run: stop the deploy here.
        raise SettingsError("TRUSTED_DOCUMENTS_MANIFESTS", str(exc)) from None


def graphql_endpoint(runner: GraphQLRunner, *, graphiql: GraphiQL | None) -> GraphQLEndpoint:
    return GraphQLEndpoint(
        runner,
        context_for=graphql_context,
        ide=None if graphiql is None else graphiql.response,
    )


async def graphql_context(request: Request[AppState]) -> Context | Response:
    """The request's Context, or the refusal of a request that carries no token."""
    identity = identity_of(request)
    if identity is None:
        return refusal(MISSING_TOKEN)
    return build_context(request.state["services"].chat.for_user(identity.sub))


# --- health --------------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request[AppState]) -> Response:
    services = request.state["services"]
    table_ok, keys_ok = await asyncio.gather(_table_ready(services), _keys_ready(services))
    checks = {"dynamodb": table_ok, "signingKeys": keys_ok}
    ready = all(checks.values())
    return JSONResponse(
        {
            "status": "ready" if ready else "unavailable",
            "checks": {name: "ok" if ok else "failing" for name, ok in checks.items()},
        },
        status_code=200 if ready else 503,
    )


async def _table_ready(services: Services) -> bool:
    table = services.table
    try:
        async with table.guard(deadline=READINESS_DEADLINE_SECONDS):
            described = await table.client.describe_table(TableName=table.name)
    except ChatError:
        return False
    return described["Table"].get("TableStatus") in ("ACTIVE", "UPDATING")


async def _keys_ready(services: Services) -> bool:
    if services.jwks.has_keys:
        return True
    try:
        async with asyncio.timeout(READINESS_DEADLINE_SECONDS):
            await services.jwks.warm()
    except (SigningKeysUnavailableError, TimeoutError):
        return False
    return True
