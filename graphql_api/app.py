"""The ASGI app: routes, authentication in front of GraphQL, and the lifespan that owns clients."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
from collections.abc import AsyncIterator

import aiohttp
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from graphql_api.auth import (
    AuthenticationError,
    Identity,
    JwksCache,
    SigningKeysUnavailableError,
    TokenVerifier,
    bearer_token,
)
from graphql_api.context import Context, build_context
from graphql_api.gql.errors import Code, auth_error_body
from graphql_api.gql.schema import build_schema
from graphql_api.graphiql import GraphiQL
from graphql_api.settings import Settings
from graphql_api.storage.client import ChatTable, DynamoDBClient, client_config, open_client
from graphql_api.storage.errors import StorageError
from graphql_api.transport import GraphQLTransportGuard

logger = logging.getLogger(__name__)

# Probes must answer well within a load balancer's timeout, whatever DynamoDB is doing.
READINESS_DEADLINE_SECONDS = 2.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class Services:
    """The long-lived objects the lifespan opens; requests reach them as `app.state.services`."""

    settings: Settings
    table: ChatTable
    jwks: JwksCache
    verifier: TokenVerifier


def services_of(request: Request | WebSocket) -> Services:
    services = getattr(request.app.state, "services", None)
    if not isinstance(services, Services):
        raise RuntimeError("the app's lifespan has not started")
    return services


def create_app(
    settings: Settings,
    *,
    aws_credentials: tuple[str, str] | None = None,
    graphiql_headers: dict[str, str] | None = None,
) -> Starlette:
    """The service. `graphiql_headers` pre-fills GraphiQL's headers editor: dev use only."""
    graphiql = (
        GraphiQL.load(endpoint="/graphql", headers=graphiql_headers)
        if settings.graphiql_enabled
        else None
    )
    view = GraphQLView(settings, graphiql=graphiql)
    middleware: list[Middleware] = []
    if settings.cors_allow_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_allow_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    middleware.append(
        Middleware(GraphQLTransportGuard, path="/graphql", max_body_bytes=settings.max_body_bytes)
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with _services(settings, aws_credentials) as services:
            app.state.services = services
            if settings.gc_freeze_after_startup:
                gc.freeze()
            try:
                yield
            finally:
                del app.state.services

    return Starlette(
        routes=[
            Route("/graphql", view),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *(graphiql.routes() if graphiql else []),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )


@contextlib.asynccontextmanager
async def open_dynamodb(
    settings: Settings, aws_credentials: tuple[str, str] | None
) -> AsyncIterator[DynamoDBClient]:
    """The process's one DynamoDB client, configured from `settings`."""
    config = client_config(
        max_pool_connections=settings.dynamodb_max_pool_connections,
        connect_timeout=settings.dynamodb_connect_timeout,
        read_timeout=settings.dynamodb_read_timeout,
        max_attempts=settings.dynamodb_max_attempts,
    )
    async with open_client(
        region=settings.aws_region,
        endpoint_url=settings.dynamodb_endpoint_url,
        config=config,
        credentials=aws_credentials,
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def _services(
    settings: Settings, aws_credentials: tuple[str, str] | None
) -> AsyncIterator[Services]:
    async with (
        open_dynamodb(settings, aws_credentials) as client,
        aiohttp.ClientSession() as session,
    ):
        jwks = JwksCache.from_settings(settings, session=session)
        if settings.jwks_warm_at_startup:
            try:
                await jwks.warm()
            except SigningKeysUnavailableError:
                # Not fatal: the first request (or /readyz) fetches again.
                logger.warning("could not fetch the signing keys at startup from %s", jwks)
        yield Services(
            settings=settings,
            table=ChatTable(
                client=client, name=settings.table_name, deadline=settings.dynamodb_deadline
            ),
            jwks=jwks,
            verifier=TokenVerifier.from_settings(settings, jwks),
        )


# --- health --------------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = services_of(request)
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
    except StorageError:
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


# --- GraphQL -------------------------------------------------------------------------------


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view behind our authentication and request limits."""

    def __init__(self, settings: Settings, *, graphiql: GraphiQL | None) -> None:
        super().__init__(
            build_schema(settings),
            graphql_ide="graphiql" if graphiql else None,
            allow_queries_via_get=True,
        )
        self._settings = settings
        self._graphiql = graphiql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self._respond(request)
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        # The IDE page is public; the queries it then sends carry the Authorization header.
        if self.graphql_ide and self.should_render_graphql_ide(self.request_adapter_class(request)):
            return await self.render_graphql_ide(request)
        try:
            identity = await _authenticate(request, services_of(request).verifier)
        except AuthenticationError as exc:
            return _refusal(exc)
        request.state.identity = identity
        try:
            return await self.run(request)
        except HTTPException as exc:
            allowed = "POST" if request.method == "GET" else "GET, POST"
            headers = {"Allow": allowed} if exc.status_code == 405 else None
            return PlainTextResponse(exc.reason, status_code=exc.status_code, headers=headers)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services = services_of(request)
        identity = request.state.identity
        if not isinstance(identity, Identity):
            raise RuntimeError("GraphQL ran before authentication")
        return build_context(identity=identity, table=services.table, settings=services.settings)

    async def render_graphql_ide(self, request: Request) -> Response:
        if self._graphiql is None:
            raise RuntimeError("GraphiQL is disabled")
        return self._graphiql.response(request)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=request_data,
            )
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                # A mutation over GET: the method is what is wrong, not the document.
                raise HTTPException(405, exc.reason) from exc
            raise


async def _authenticate(request: Request, verifier: TokenVerifier) -> Identity:
    token = bearer_token(request.headers.getlist("authorization"))
    return await verifier.verify(token)


def _refusal(exc: AuthenticationError) -> Response:
    if isinstance(exc, SigningKeysUnavailableError):
        return JSONResponse(
            auth_error_body("Cannot verify tokens right now; try again.", Code.SERVICE_UNAVAILABLE),
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse(
        auth_error_body(exc.message, Code.UNAUTHENTICATED),
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )
