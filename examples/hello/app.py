"""hello: a stdlib-only WSGI app for stackato-local's examples and tests.

It listens on $PORT (as Stackato apps must), counts visits in a database, and
reports a few of the variables the platform sets. The database is sqlite: the
file named by a sqlite:// DATABASE_URL, else dev.db next to this file.
"""
import json
import os
import sqlite3
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

HERE = os.path.dirname(os.path.abspath(__file__))


def db_path():
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("sqlite:///"):
        # sqlite:////abs/path (absolute) or sqlite:///rel/path (relative to the app).
        return os.path.join(HERE, url[len("sqlite:///"):])
    return os.path.join(HERE, "dev.db")


def table():
    name = os.environ.get("VISITS_TABLE", "visits")
    return name if name.isidentifier() else "visits"


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    with sqlite3.connect(db_path()) as db:
        if path == "/":
            db.execute("INSERT INTO %s DEFAULT VALUES" % table())
        count = db.execute("SELECT COUNT(*) FROM %s" % table()).fetchone()[0]
    if path == "/env":
        keys = ["STACKATO_APP_NAME", "PORT", "HOME", "VCAP_APPLICATION", "GREETING"]
        body = json.dumps({k: os.environ.get(k) for k in keys}, indent=2) + "\n"
        ctype = "application/json"
    else:
        body = "%s! visits: %d\n" % (os.environ.get("GREETING", "Hello"), count)
        ctype = "text/plain; charset=utf-8"
    start_response("200 OK", [("Content-Type", ctype)])
    return [body.encode("utf-8")]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    host = os.environ.get("VCAP_APP_HOST", "0.0.0.0")
    server = make_server(host, port, application, handler_class=QuietHandler)
    print("hello listening on %s:%d" % (host, port), flush=True)
    server.serve_forever()
