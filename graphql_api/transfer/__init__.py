"""Bringing history in from exports (ChatGPT, Claude, our own) and writing our export format.

Pure reading and writing: nothing here talks to storage or knows GraphQL. The CLI reads with
`ExportReader` (or `read_conversations`), stores what it yields, and reports with `Progress`;
the export command writes with `ExportWriter`.
"""

from .batches import import_batches
from .detect import detect_format
from .errors import MalformedExportError, TransferError, UnknownFormatError
from .model import (
    SOURCE_FORMATS,
    ExportFormat,
    Feedback,
    ImportedConversation,
    ImportedMessage,
    ImportedProject,
    Notes,
    Origin,
    ReadResult,
    RefusedConversation,
    Role,
    SourceFormat,
    Status,
)
from .native import FORMAT, VERSION
from .progress import Progress, Summary
from .reader import ExportReader, read_conversations
from .writer import ExportWriter, write_export, write_export_async

__all__ = [
    "FORMAT",
    "SOURCE_FORMATS",
    "VERSION",
    "ExportFormat",
    "ExportReader",
    "ExportWriter",
    "Feedback",
    "ImportedConversation",
    "ImportedMessage",
    "ImportedProject",
    "MalformedExportError",
    "Notes",
    "Origin",
    "Progress",
    "ReadResult",
    "RefusedConversation",
    "Role",
    "SourceFormat",
    "Status",
    "Summary",
    "TransferError",
    "UnknownFormatError",
    "detect_format",
    "import_batches",
    "read_conversations",
    "write_export",
    "write_export_async",
]
