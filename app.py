"""Entry point: ``python app.py`` serves. Nothing is built at import: a WSGI
server builds its own app with ``playground.application:create_app()``.

Options (each also an environment variable, see playground/settings.py):
  --host ADDRESS   (PLAYGROUND_HOST, default 127.0.0.1)
  --port PORT      (PLAYGROUND_PORT, default 5000)
"""

from __future__ import annotations

import argparse
import os

from playground.application import bound_native_memory, create_app, services
from playground.settings import from_environment


def main(argv=None) -> None:
    defaults = from_environment()
    parser = argparse.ArgumentParser(description="Serve the Threading Playground.")
    parser.add_argument("--host", default=defaults["HOST"], help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=defaults["PORT"], help="port (default %(default)s)")
    parser.add_argument("--database", default=defaults["DATABASE"], help="SQLite file (default %(default)s)")
    args = parser.parse_args(argv)
    bound_native_memory()  # first: before the pool's and the server's threads
    app = create_app({"DATABASE": args.database})
    with app.app_context():
        services().pool.start()  # warm the workers now, so the first click is fast
    print(
        f"Threading Playground on http://{args.host}:{args.port}/  (runs stored in {os.path.relpath(args.database)})",
        flush=True,
    )
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
