"""The Milvus engine's connections and filters: one client a Milvus in the process, shared by every index loaded
(a server reloads one after each rebuild), closed when the last engine using it closes; filter literals that
Lite's parser and a server's read alike; and Milvus's failures while a question is answered, as `EngineError`."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pymilvus import MilvusClient, MilvusException

from ..errors import Conflict, EngineError
from .base import redact

BATCH = 256  # records or ids a request: a few MB, well under a server's 64 MB gRPC message limit
ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
Key = tuple[str, str]  # a server's (uri, token), or a Lite folder's (path, "")

_clients: dict[Key, MilvusClient] = {}
_users: dict[Key, int] = {}  # open engines of each client
_lock = threading.Lock()


def literal(value: str) -> str:
    """`value` as a string literal of a Milvus filter (Lite's parser and a server's read the same escapes)."""
    return '"' + value.translate(ESCAPES) + '"'


def one_of(field: str, values: Sequence[str], negate: bool = False) -> str:
    return f"{field} {'not in' if negate else 'in'} [{', '.join(literal(v) for v in values)}]"


def batches(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def client_key(uri: str, token: str, path: str) -> Key:
    return (path, "") if path else (uri, token)


def open_client(uri: str, token: str, path: str) -> MilvusClient:
    """The process's client of `uri` (Lite: of the folder `path`), opened on first use."""
    key = client_key(uri, token, path)
    with _lock:
        client = _clients.get(key)
        if client is None:
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                try:
                    client = MilvusClient(path)  # Lite has no authentication: a token would be ignored
                except MilvusException as e:  # pymilvus logs Lite's DataDirLockedError and raises this instead
                    raise Conflict(
                        f"cannot open Milvus Lite at {path}: another process holds it (one process a folder)"
                    ) from e
            else:
                client = MilvusClient(uri=uri, token=token)
            _clients[key] = client
        _users[key] = _users.get(key, 0) + 1
    return client


def release_client(key: Key, path: str) -> None:
    """One engine less on the client `key`; the last one closes it and stops Lite's server, which holds the
    folder's lock for other processes (under the lock: a client being closed is never handed out meanwhile)."""
    with _lock:
        _users[key] -= 1
        if _users[key]:
            return
        del _users[key]
        _clients.pop(key).close()
        if path:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(path)


@contextmanager
def reachable(uri: str) -> Iterator[None]:
    """A failure of Milvus while a question is answered, as `EngineError` (the server's 503), not a crash."""
    try:
        yield
    except MilvusException as exc:
        raise EngineError(f"Milvus at {redact(uri)} failed: {exc}; check that it runs") from None
