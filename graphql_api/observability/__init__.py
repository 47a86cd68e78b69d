"""Logs, metrics, traces and the DynamoDB cost of every request.

Each request gets a RequestRecord in a context variable (record.py); the layers it passes
through add to it without knowing who reads it: the DynamoDB client's event hooks
(capacity.py), the GraphQL transport (cost.py). The middleware (middleware.py) opens the
record, and at the end writes the request's log line, metrics and span from it; for an
operation over a WebSocket, which has no HTTP request of its own, sockets.py does the same
(no span).

This package sits below storage in the layers, so storage may import its hooks; nothing in it
imports the layers above. Keep this file free of imports: storage imports capacity.py, and
must not pull the rest in with it.
"""
