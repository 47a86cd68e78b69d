"""A synthetic ChatGPT export of a chosen size, shaped like a real one, for import benchmarks.

    python -m benchmarks.gen_export --size-mb 200 --out /tmp/conversations.json
    python -m benchmarks.gen_export --size-mb 200 --out /tmp/export --split-mb 50   # parts
    python -m benchmarks.gen_export --size-mb 200 --out /tmp/export.zip             # a zip

Conversations have 2 to a few hundred messages (most short, a long tail), edits and
regenerations (branches), web searches (a tool call and a tool message), hidden system
prompts, images, reasoning nodes, null times and citation markers, in the proportions of a
heavy user's history. The same seed gives the same bytes. Nothing is held beyond one
conversation, so the generator runs in little memory at any size.
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

_VOCABULARY: Final = (
    "the of and to in is that for it as with was on be by this are or from at an which "
    "data model function value result example time system user request error answer code "
    "python table query index memory thread process file stream parse import export branch "
    "message conversation token latency budget design test case review deploy cluster region "
    "Lisbon recipe garden bicycle invoice contract chapter lesson theorem proof vector matrix "
    "however therefore because although instead finally first second third also then"
)
_WORDS: Final = tuple(_VOCABULARY.split())
_START: Final = 1_640_995_200.0  # 2022-01-01
_MODELS: Final = ("gpt-4o", "gpt-4o-mini", "o3", "gpt-4", "text-davinci-002-render-sha")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, required=True)
    parser.add_argument("--out", type=Path, required=True, help="a .json file, a .zip or a folder")
    parser.add_argument("--split-mb", type=float, help="write conversations-000.json... parts")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    size = int(args.size_mb * 1024 * 1024)
    part = int(args.split_mb * 1024 * 1024) if args.split_mb else None
    conversations, messages = write(args.out, size=size, part_size=part, seed=args.seed)
    print(f"{args.out}: {conversations:,} conversations, {messages:,} message nodes")
    return 0


def write(out: Path, *, size: int, part_size: int | None, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)  # noqa: S311 - test data, and it must repeat for a seed
    out.parent.mkdir(parents=True, exist_ok=True)
    generated = _conversations(rng)
    if out.suffix == ".zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            if part_size is None:
                with archive.open("conversations.json", "w") as raw:
                    return _write_list(_Text(raw), generated, size)
            return _write_parts(
                lambda n: _Text(archive.open(f"conversations-{n:03d}.json", "w")),
                generated,
                size,
                part_size,
            )
    if part_size is not None:
        out.mkdir(parents=True, exist_ok=True)
        return _write_parts(
            lambda n: (out / f"conversations-{n:03d}.json").open("w", encoding="utf-8"),
            generated,
            size,
            part_size,
        )
    with out.open("w", encoding="utf-8") as stream:
        return _write_list(stream, generated, size)


class _Text:
    """A zip member opened for writing, as a text stream."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def write(self, text: str) -> int:
        return self._raw.write(text.encode())

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> _Text:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_list(
    stream: IO[str] | _Text, generated: Iterator[dict[str, Any]], size: int
) -> tuple[int, int]:
    written, conversations, messages = 1, 0, 0
    stream.write("[")
    while written < size:
        conversation = next(generated)
        text = ("," if conversations else "") + json.dumps(conversation, ensure_ascii=False)
        stream.write(text)
        written += len(text.encode())
        conversations += 1
        messages += len(conversation["mapping"])
    stream.write("]")
    return conversations, messages


def _write_parts(
    open_part: Any, generated: Iterator[dict[str, Any]], size: int, part_size: int
) -> tuple[int, int]:
    total_conversations = total_messages = 0
    number = 0
    remaining = size
    while remaining > 0:
        with open_part(number) as stream:
            conversations, messages = _write_list(stream, generated, min(part_size, remaining))
        remaining -= part_size
        total_conversations += conversations
        total_messages += messages
        number += 1
    return total_conversations, total_messages


def _conversations(rng: random.Random) -> Iterator[dict[str, Any]]:
    moment = _START
    while True:
        moment += rng.expovariate(1 / 20_000)
        yield _conversation(rng, moment)


def _text(rng: random.Random, mean_words: int) -> str:
    count = max(1, int(rng.lognormvariate(0, 0.8) * mean_words))
    words = rng.choices(_WORDS, k=count)
    lines = [" ".join(words[i : i + 14]) for i in range(0, count, 14)]
    return ".\n".join(lines) + "."


def _node_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _conversation(rng: random.Random, start: float) -> dict[str, Any]:
    model = rng.choice(_MODELS)
    mapping: dict[str, Any] = {}

    def add(parent: str | None, message: dict[str, Any] | None, node_id: str | None = None) -> str:
        node_id = node_id or _node_id(rng)
        mapping[node_id] = {"id": node_id, "message": message, "parent": parent, "children": []}
        if parent is not None:
            mapping[parent]["children"].append(node_id)
        return node_id

    clock = [start]

    def message(role: str, content: dict[str, Any], **metadata: Any) -> dict[str, Any]:
        clock[0] += rng.uniform(2, 90)
        created = None if rng.random() < 0.01 else round(clock[0], 6)
        return {
            "id": "",
            "author": {"role": role, "name": None, "metadata": {}},
            "create_time": created,
            "update_time": None,
            "content": content,
            "status": "finished_successfully",
            "end_turn": role == "assistant" or None,
            "weight": 1.0,
            "metadata": metadata,
            "recipient": metadata.pop("recipient", "all"),
            "channel": None,
        }

    def text(body: str) -> dict[str, Any]:
        return {"content_type": "text", "parts": [body]}

    root = add(None, None, "client-created-root")
    tip = add(root, message("system", text(""), is_visually_hidden_from_conversation=True))
    turns = max(1, min(400, int(rng.lognormvariate(1.8, 1.0))))
    for _ in range(turns):
        branch_from = tip
        user_content = text(_text(rng, 40))
        if rng.random() < 0.08:
            user_content = {
                "content_type": "multimodal_text",
                "parts": [
                    {
                        "content_type": "image_asset_pointer",
                        "asset_pointer": f"file-service://file-{rng.getrandbits(48):x}",
                        "size_bytes": rng.randrange(10_000, 3_000_000),
                        "width": 1024,
                        "height": 768,
                    },
                    _text(rng, 20),
                ],
            }
        tip = add(tip, message("user", user_content))
        if model == "o3" and rng.random() < 0.5:
            thoughts = {
                "content_type": "thoughts",
                "thoughts": [{"summary": "Thinking", "content": _text(rng, 60)}],
            }
            tip = add(tip, message("assistant", thoughts, model_slug=model))
        if rng.random() < 0.1:
            call = {"content_type": "code", "language": "unknown", "text": 'search("...")'}
            tip = add(tip, message("assistant", call, model_slug=model, recipient="browser"))
            result = {"content_type": "tether_browsing_display", "result": _text(rng, 80)}
            tip = add(tip, message("tool", result))
        answer = _text(rng, 220)
        if rng.random() < 0.1:
            answer += " \ue200cite\ue202turn0search0\ue201"
        question = tip
        tip = add(tip, message("assistant", text(answer), model_slug=model))
        if rng.random() < 0.06:  # regenerated: a sibling answer, now the active one
            tip = add(question, message("assistant", text(_text(rng, 220)), model_slug=model))
        if rng.random() < 0.04:  # an edited question: a new branch from before it
            edited = add(branch_from, message("user", text(_text(rng, 40))))
            tip = add(edited, message("assistant", text(_text(rng, 220)), model_slug=model))
    for node_id, node in mapping.items():
        if node["message"] is not None:
            node["message"]["id"] = node_id
    conversation_id = _node_id(rng)
    return {
        "title": "" if rng.random() < 0.02 else _text(rng, 4)[:60],
        "create_time": start,
        "update_time": clock[0],
        "mapping": mapping,
        "moderation_results": [],
        "current_node": tip,
        "plugin_ids": None,
        "conversation_id": conversation_id,
        "conversation_template_id": None,
        "gizmo_id": None,
        "is_archived": rng.random() < 0.05,
        "safe_urls": [],
        "default_model_slug": model,
        "id": conversation_id,
    }


if __name__ == "__main__":
    raise SystemExit(main())
