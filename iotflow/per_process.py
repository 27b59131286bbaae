"""One object per process, made on first use: the owner of a background thread or a connection.

Threads do not survive ``fork``, so a child (a gunicorn worker forked after the app was loaded,
a Celery pool process) must not use its parent's object: it makes its own on first use. An
optional key makes a new one when what it was made for changes (the Redis URL in settings, say).
"""

import os
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    def __init__(
        self,
        make: Callable[[], T],
        key: Callable[[], Hashable] = lambda: None,
        replaced: Callable[[T], None] | None = None,
    ):
        """``make`` builds the object; ``key`` says what it is for; ``replaced`` lets go of one that is out of date."""
        self._make = make
        self._key = key
        self._replaced = replaced
        self._lock = threading.Lock()
        self._owner: tuple[int, Hashable] | None = None
        self._value: T | None = None

    def get(self) -> T:
        """This process's object for the current key, made now if there is none yet."""
        owner = (os.getpid(), self._key())
        if self._owner != owner:
            with self._lock:
                if self._owner != owner:
                    previous, same_process = self._value, self._owner is not None and self._owner[0] == owner[0]
                    self._value = self._make()
                    self._owner = owner
                    if previous is not None and same_process and self._replaced is not None:
                        self._replaced(previous)
        return self._value  # type: ignore[return-value]

    def peek(self) -> T | None:
        """This process's object if it made one, without making it."""
        owner = self._owner
        return self._value if owner is not None and owner[0] == os.getpid() else None

    def fresh(self) -> "PerProcess[T]":
        """A holder like this one with nothing made yet (tests swap one in for a clean start)."""
        return PerProcess(self._make, self._key, self._replaced)
