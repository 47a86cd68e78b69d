"""Failures reading or writing an export; `str()` is the one line a person sees."""

from __future__ import annotations


class TransferError(Exception):
    """Root of every import and export failure."""


class UnknownFormatError(TransferError):
    """The files are not an export this package reads, or the formats of several disagree."""


class MalformedExportError(TransferError):
    """The file cannot be read on: not JSON, truncated, or not shaped like its format.

    Conversations yielded before it was raised were read whole and may be used.
    """


class MalformedConversation(Exception):
    """One conversation cannot be imported; its reader refuses it and goes on to the next."""
