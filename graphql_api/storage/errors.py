"""Domain errors raised at the storage boundary; callers never see botocore types."""

from __future__ import annotations


class StorageError(Exception):
    """Root of every storage failure. Raised as itself for faults that are our bug."""


class NotFoundError(StorageError):
    """The item does not exist, or belongs to another user: the two are indistinguishable."""


class ConflictError(StorageError):
    """A condition failed: a stale version, an id already taken, a delete in progress."""


class ValidationError(StorageError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnavailableError(StorageError):
    """DynamoDB throttled, failed or was unreachable after every retry; safe to retry later."""
