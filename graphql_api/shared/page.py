"""The shared conversation as a page: self-contained (one inline style, no script, nothing
fetched from anywhere), every piece of content escaped, readable on a phone.

The style is one constant, so the Content-Security-Policy names it by its hash instead of
allowing inline styles at large; the favicon is an empty data: URL, so a browser asks for no
/favicon.ico either.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterator
from typing import Final

from graphql_api.storage.records import SharedConversation, SharedMessage, format_timestamp

STYLE: Final = """
:root { color-scheme: light dark; --muted: #6b6b6b; --rule: #d9d9d9; --user: #f2f2f2; }
@media (prefers-color-scheme: dark) {
  :root { --muted: #a0a0a0; --rule: #3a3a3a; --user: #262626; }
}
* { box-sizing: border-box; }
body {
  margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  -webkit-text-size-adjust: 100%;
}
main { max-width: 46rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0 0 .25rem; overflow-wrap: anywhere; }
.note { color: var(--muted); font-size: .875rem; margin: 0 0 1.5rem; }
ol { list-style: none; margin: 0; padding: 0; }
li { border-top: 1px solid var(--rule); padding: 1rem 0; }
li.user .content { background: var(--user); border-radius: .75rem; padding: .75rem 1rem; }
.who { font-size: .8125rem; font-weight: 600; margin: 0 0 .375rem; }
.who span, .who time { color: var(--muted); font-weight: 400; }
.content { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
"""
# The policy's hash of the one style element: the browser hashes its text exactly as sent.
STYLE_HASH: Final = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()

_ROLE_LABELS: Final = {"user": "User", "assistant": "Assistant", "system": "System"}


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _moment(text: str) -> str:
    """A timestamp as a <time>: machine-readable, shown to the minute in UTC."""
    return f'<time datetime="{text}">{text[:10]} {text[11:16]} UTC</time>'


def _document(title: str, body: Iterator[str]) -> str:
    return "".join(
        [
            "<!doctype html>\n",
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            '<meta name="robots" content="noindex, nofollow">\n',
            '<meta name="referrer" content="no-referrer">\n',
            '<link rel="icon" href="data:,">\n',
            f"<title>{_escape(title)}</title>\n",
            f"<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
            *body,
            "</main>\n</body>\n</html>\n",
        ]
    )


def conversation_page(shared: SharedConversation) -> str:
    return _document(f"{shared.title} (shared conversation)", _conversation(shared))


def _conversation(shared: SharedConversation) -> Iterator[str]:
    count = len(shared.messages)
    yield f'<h1 dir="auto">{_escape(shared.title)}</h1>\n'
    yield (
        '<p class="note">A read-only copy of a conversation, as it was on '
        f"{_moment(format_timestamp(shared.updated_at))}; "
        f"{count} message{'' if count == 1 else 's'}.</p>\n<ol>\n"
    )
    for message in shared.messages:
        yield from _message(message)
    yield "</ol>\n"


def _message(message: SharedMessage) -> Iterator[str]:
    model = "" if message.model_id is None else f" <span>{_escape(message.model_id)}</span>"
    yield f'<li class="{message.role}">\n'
    yield (
        f'<p class="who">{_ROLE_LABELS[message.role]}{model} '
        f"{_moment(format_timestamp(message.created_at))}</p>\n"
    )
    yield f'<div class="content" dir="auto">{_escape(message.content)}</div>\n</li>\n'


def notice_page(title: str, text: str) -> str:
    """A page saying why there is nothing to show (not found, too many requests, ...)."""
    return _document(title, iter([f"<h1>{_escape(title)}</h1>\n<p>{_escape(text)}</p>\n"]))
