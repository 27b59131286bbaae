"""A device's raw telemetry of a time range as CSV, streamed page by page from the backend."""

import csv
from collections.abc import Iterator

from telemetry.backends import get_backend
from telemetry.timeparse import to_iso

PAGE_SIZE = 5000


class _Line:
    """A file-like object whose write() returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def points_between(device_id: int, start: int, end: int, page_size: int = PAGE_SIZE) -> Iterator:
    """Every point with start <= ts < end, oldest first, without holding more than a page in memory.

    A page that ends inside a timestamp (several measurements at one ts) is cut before that
    timestamp, which the next page starts with, so no point is skipped or repeated.
    """
    backend = get_backend()
    while start < end:
        page = backend.history(device_id, start=start, end=end, limit=page_size, descending=False)
        if len(page) < page_size:
            yield from page
            return
        last = page[-1].ts
        complete = [p for p in page if p.ts < last]
        if not complete:  # one timestamp fills a whole page: take it as it is
            yield from page
            start = last + 1
            continue
        yield from complete
        start = last


def csv_rows(device_id: int, start: int, end: int) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(["timestamp", "measurement", "value"])
    for point in points_between(device_id, start, end):
        yield writer.writerow([to_iso(point.ts), point.measurement, point.value])
