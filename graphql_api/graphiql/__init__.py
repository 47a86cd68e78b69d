"""GraphiQL served by the service itself: the page, and its assets from the installed package.

Nothing on the page comes from another host. The assets in `static/` are bundled from pinned
npm packages by `make graphiql-assets` (tools/graphiql/) and committed; `static/manifest.json`
lists every file with its sha256 and the npm packages inside it, and only files it lists are
served. The page runs no inline script: its settings travel in a JSON block the bundle reads.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

STATIC: Final = Path(__file__).with_name("static")
ASSETS_PATH: Final = "/graphiql"

DEFAULT_QUERY: Final = """\
# GraphiQL for chat-history-api.
#
# Requests carry the headers of the Headers tab below: put your token there as
#   {"Authorization": "Bearer <token>"}
# Run with Ctrl-Enter; the Docs and Explorer buttons on the left show the schema.
query RecentConversations {
  conversations(first: 10) {
    totalCount
    edges {
      node {
        id
        title
        messageCount
      }
    }
  }
}
"""

# Every name carries a hash of its content, so a browser may keep a file as long as it likes.
_IMMUTABLE: Final = "public, max-age=31536000, immutable"
_MEDIA_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}
# A Host header fit to name in the CSP; anything else (";" above all) gets 'self' alone.
_HOST: Final = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


class AssetsMissingError(RuntimeError):
    """The package carries no GraphiQL assets (an install that left out its package data)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Assets:
    """The built files, as `static/manifest.json` lists them."""

    directory: Path
    script: str
    stylesheet: str
    icon: str
    sha256: Mapping[str, str]

    @classmethod
    def load(cls, directory: Path = STATIC) -> Assets:
        try:
            manifest: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
        except FileNotFoundError as exc:
            raise AssetsMissingError(f"no GraphiQL assets in {directory}") from exc
        return cls(
            directory=directory,
            script=manifest["entry"]["script"],
            stylesheet=manifest["entry"]["stylesheet"],
            icon=manifest["entry"]["icon"],
            sha256={name: entry["sha256"] for name, entry in manifest["files"].items()},
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class GraphiQL:
    """The page for `endpoint`, its headers editor pre-filled with `headers` (dev use only),
    and `default_query` in its editor when the URL names none (`?q=`) and the browser has
    kept none from an earlier visit."""

    assets: Assets
    endpoint: str
    headers: Mapping[str, str] | None = None
    default_query: str = DEFAULT_QUERY
    assets_path: str = ASSETS_PATH

    @classmethod
    def load(
        cls,
        *,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        default_query: str | None = None,
    ) -> GraphiQL:
        """The page; DEFAULT_QUERY asks for a token, so a caller that fills `headers` in
        passes a `default_query` that does not."""
        return cls(
            assets=Assets.load(),
            endpoint=endpoint,
            headers=headers,
            default_query=DEFAULT_QUERY if default_query is None else default_query,
        )

    def response(self, request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        return HTMLResponse(
            self.html(style_nonce=nonce),
            headers={
                "Content-Security-Policy": content_security_policy(
                    host=request.headers.get("host"), style_nonce=nonce
                ),
                # The page may hold a bearer token.
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    def html(self, *, style_nonce: str) -> str:
        config = {
            "endpoint": self.endpoint,
            "headers": dict(self.headers) if self.headers else None,
            "defaultQuery": self.default_query,
            "styleNonce": style_nonce,
        }
        script = html.escape(f"{self.assets_path}/{self.assets.script}")
        stylesheet = html.escape(f"{self.assets_path}/{self.assets.stylesheet}")
        icon = html.escape(f"{self.assets_path}/{self.assets.icon}")
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL · chat-history-api</title>
<link rel="icon" href="{icon}" type="image/svg+xml">
<link rel="stylesheet" href="{stylesheet}">
<script type="application/json" id="graphiql-config">{json_for_script(config)}</script>
<script defer src="{script}"></script>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
</body>
</html>
"""

    def routes(self) -> list[BaseRoute]:
        return [Route(f"{self.assets_path}/{{name}}", self._asset, methods=["GET"])]

    async def _asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        # Only what the manifest lists: never a path built from the request.
        if name not in self.assets.sha256:
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(
            self.assets.directory / name,
            media_type=_MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream"),
            headers={"Cache-Control": _IMMUTABLE, "X-Content-Type-Options": "nosniff"},
        )


def json_for_script(value: object) -> str:
    """JSON that cannot end the <script> element holding it, whatever its strings contain."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def content_security_policy(*, host: str | None, style_nonce: str) -> str:
    """Only the service's own origin. Subscriptions use a WebSocket to the same host, which
    older browsers do not count as 'self'; TLS may end at a proxy, so both ws and wss."""
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        # <style> elements only with this response's nonce (Radix dialogs add one). Style
        # attributes are allowed: CodeMirror's search and jump-to-line dialogs write them.
        "style-src": f"'self' 'nonce-{style_nonce}'",
        "style-src-attr": "'unsafe-inline'",
        "font-src": "'self'",
        "img-src": "'self'",
        "connect-src": f"'self'{sockets}",
        # GraphiQL 4's editor (CodeMirror 5) runs on the page itself.
        "worker-src": "'none'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())
