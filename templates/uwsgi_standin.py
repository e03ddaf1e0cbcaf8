"""stackato-local's stand-in for uWSGI, used for $STACKATO_UWSGI when real uWSGI cannot be
built here (no C compiler). Pure Python standard library: a threaded HTTP WSGI server that
understands the uWSGI options Stackato apps append:

  --http-socket/--http HOST:PORT, --wsgi-file FILE, --module MOD[:CALLABLE], --callable NAME,
  --chdir DIR, --pythonpath DIR, --check-static DIR, --static-map /URL=DIR, --import MOD,
  --env KEY=VALUE; --master, --processes, --threads, --enable-threads, --die-on-term,
  --need-app and other tuning options are accepted and ignored.

SIGTERM stops it (as --die-on-term does for uWSGI). Runs on Python 2.7 and 3.
"""
import importlib
import mimetypes
import os
import signal
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

try:
    import socketserver
except ImportError:  # Python 2
    import SocketServer as socketserver

FLAGS_WITHOUT_VALUE = {
    "--master", "--enable-threads", "--die-on-term", "--need-app", "--lazy-apps",
    "--single-interpreter", "--vacuum", "--thunder-lock", "--honour-stdin",
    "--disable-logging", "--log-master", "--catch-exceptions", "--no-orphans",
    "--strict", "--auto-procname", "--py-autoreload-quiet",
}


def parse(argv):
    opts = {"static": [], "static_map": [], "pythonpath": [], "import": [], "env": []}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if "=" in arg and arg.startswith("--"):
            key, value = arg.split("=", 1)
        elif arg in FLAGS_WITHOUT_VALUE or not arg.startswith("--"):
            i += 1
            continue
        else:
            key = arg
            value = argv[i + 1] if i + 1 < len(argv) else ""
            i += 1
        i += 1
        if key in ("--http-socket", "--http", "--http11-socket"):
            opts["bind"] = value
        elif key in ("--wsgi-file", "--file", "--wsgi"):
            opts["file"] = value
        elif key in ("--module", "-w"):
            opts["module"] = value
        elif key == "--callable":
            opts["callable"] = value
        elif key == "--chdir":
            opts["chdir"] = value
        elif key in ("--pythonpath", "--python-path", "--pp"):
            opts["pythonpath"].append(value)
        elif key == "--check-static":
            opts["static"].append(value)
        elif key == "--static-map":
            opts["static_map"].append(value)
        elif key == "--import":
            opts["import"].append(value)
        elif key == "--env":
            opts["env"].append(value)
        elif key == "--mount":
            mount, target = value.split("=", 1) if "=" in value else ("/", value)
            opts["file"] = target
    return opts


def load_app(opts):
    callable_name = opts.get("callable", "application")
    if "module" in opts:
        mod, _, attr = opts["module"].partition(":")
        module = importlib.import_module(mod)
        return getattr(module, attr or callable_name)
    path = os.path.abspath(opts.get("file") or "wsgi.py")
    if sys.version_info[0] < 3:
        import imp
        module = imp.load_source("uwsgi_file_app", path)
        return getattr(module, callable_name)
    import importlib.util
    spec = importlib.util.spec_from_file_location("uwsgi_file_app", path)
    if spec is None or spec.loader is None:
        raise SystemExit("uwsgi (stand-in): cannot load %s" % path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, callable_name)


def static_wrapper(app, static_dirs, static_maps):
    def serve(path, start_response):
        ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        with open(path, "rb") as f:
            data = f.read()
        start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(data)))])
        return [data]

    def wrapped(environ, start_response):
        url = environ.get("PATH_INFO", "/")
        for mapping in static_maps:
            prefix, _, directory = mapping.partition("=")
            if url.startswith(prefix):
                candidate = os.path.join(directory, url[len(prefix):].lstrip("/"))
                if os.path.isfile(candidate):
                    return serve(candidate, start_response)
        for directory in static_dirs:
            candidate = os.path.normpath(os.path.join(directory, url.lstrip("/")))
            if candidate.startswith(os.path.normpath(directory)) and os.path.isfile(candidate):
                return serve(candidate, start_response)
        return app(environ, start_response)

    return wrapped


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class Handler(WSGIRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("[uwsgi stand-in] %s %s\n" % (self.address_string(), fmt % args))


def main():
    opts = parse(sys.argv[1:])
    for kv in opts["env"]:
        k, _, v = kv.partition("=")
        os.environ[k] = v
    if "chdir" in opts:
        os.chdir(opts["chdir"])
    for p in reversed(opts["pythonpath"] + [os.getcwd()]):
        if p not in sys.path:
            sys.path.insert(0, p)
    for mod in opts["import"]:
        importlib.import_module(mod)
    bind = opts.get("bind", ":" + os.environ.get("PORT", "8080"))
    host, _, port = bind.rpartition(":")
    app = static_wrapper(load_app(opts), opts["static"], opts["static_map"])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = make_server(host or "0.0.0.0", int(port), app,
                         server_class=ThreadingServer, handler_class=Handler)
    sys.stderr.write("[uwsgi stand-in] serving on %s:%s\n" % (host or "0.0.0.0", port))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
