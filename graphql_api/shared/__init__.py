"""The public route of share links, `GET /shared/{id}`: no token, a page for a browser and
JSON for a program, never indexed.

Who may read is whoever holds the link: the route asks for no token (the authentication
middleware leaves its paths alone, and the CDK routes them past the JWT authorizer), but
it is admitted and shed as every route that reaches DynamoDB is, and each client address
has a budget of SHARE_READS_PER_MINUTE reads (unknown ids cost the same, so guessing ids is
as slow as reading). An unknown, revoked or deleted link answers the same 404, byte for byte.
"""

from __future__ import annotations

from .route import (
    PUBLIC_HEADERS,
    SHARED_PATHS,
    SharedHeaders,
    logged_path,
    shared_routes,
)

__all__ = ["PUBLIC_HEADERS", "SHARED_PATHS", "SharedHeaders", "logged_path", "shared_routes"]
