"""A WSGI application that answers, after ``?hold=<seconds>``, with the id of the process that served it."""

import os
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    hold = float(parse_qs(environ.get("QUERY_STRING", "")).get("hold", ["0"])[0])
    time.sleep(hold)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
