"""Message content too large for a DynamoDB item, kept as S3 objects.

A large message's item holds the start of its content (a preview, so lists never fetch the
object) and `contentRef`, the object's key. The object is written before the transaction that
commits its message, under a key that names the message AND a hash of the content: a retry of
the same message rewrites the same object, and a conflicting retry (the same id with other
content) writes a different one, which is deleted when the transaction refuses it. An object
whose transaction never committed is referenced by nothing, so no reader can see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Final

import aioboto3  # type: ignore[import-untyped]
from aiobotocore.config import AioConfig

from graphql_api import deadline as request_deadline
from graphql_api.errors import UnavailableError
from graphql_api.settings import INLINE_CONTENT_BYTES, ContentSettings, DynamoDBSettings

from .client import translate_errors
from .records import MessageRecord

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
else:
    S3Client = Any

_PREFIX: Final = "content/"
# S3 DeleteObjects takes at most this many keys per request.
_DELETE_BATCH: Final = 1000


def object_key(message: MessageRecord) -> str:
    digest = hashlib.sha256(message.content.encode()).hexdigest()[:32]
    return f"{_PREFIX}{message.conversation_id}/{message.id}/{digest}"


def is_large(content: str) -> bool:
    return len(content.encode()) > INLINE_CONTENT_BYTES


@dataclasses.dataclass(frozen=True, kw_only=True)
class ContentStore:
    client: S3Client
    bucket: str
    deadline: float = 10.0

    async def put(self, key: str, content: str) -> None:
        async with self._guard():
            await self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=content.encode(),
                ContentType="text/plain; charset=utf-8",
            )

    async def get(self, key: str) -> str:
        async with self._guard():
            response = await self.client.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as body:
                data = await body.read()
        return bytes(data).decode()

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete objects; absent ones are not an error (deletes are retried after failures)."""
        for start in range(0, len(keys), _DELETE_BATCH):
            chunk = keys[start : start + _DELETE_BATCH]
            async with self._guard():
                response = await self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
                )
            if response.get("Errors"):
                raise UnavailableError("message content could not be deleted; try again")

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(request_deadline.bounded(self.deadline)):
                with translate_errors(service="S3", resource=self.bucket):
                    yield
        except TimeoutError as exc:
            raise UnavailableError("S3 did not answer in time") from exc


@contextlib.asynccontextmanager
async def open_content_store(
    settings: ContentSettings,
    dynamodb: DynamoDBSettings,
    *,
    credentials: tuple[str, str] | None = None,
) -> AsyncIterator[ContentStore | None]:
    """The content bucket's store, or None when there is no bucket (content then stays small
    enough for an item). Region, timeouts and retries follow the DynamoDB settings."""
    if settings.bucket is None:
        yield None
        return
    session = aioboto3.Session(
        aws_access_key_id=credentials[0] if credentials else None,
        aws_secret_access_key=credentials[1] if credentials else None,
        region_name=dynamodb.region,
    )
    config = AioConfig(
        connect_timeout=dynamodb.connect_timeout,
        read_timeout=dynamodb.read_timeout,
        retries={"mode": "standard", "total_max_attempts": dynamodb.max_attempts},
        s3={"addressing_style": "path"},
    )
    async with session.client("s3", endpoint_url=settings.endpoint_url, config=config) as client:
        yield ContentStore(client=client, bucket=settings.bucket, deadline=dynamodb.deadline)


async def filled_in(
    store: ContentStore | None, records: Sequence[MessageRecord]
) -> list[MessageRecord]:
    """`records` with the content of those kept in the bucket read back, all at once."""
    kept = [record for record in records if record.content_ref is not None]
    if not kept:
        return list(records)
    if store is None:
        raise UnavailableError("message content is kept in a bucket this service cannot reach")
    contents = await asyncio.gather(*(store.get(str(record.content_ref)) for record in kept))
    full = {record.id: content for record, content in zip(kept, contents, strict=True)}
    return [
        dataclasses.replace(record, content=full[record.id]) if record.id in full else record
        for record in records
    ]
