"""web-scraping: fetching pages with requests, one after another and from a pool of threads."""

import inspect
import queue
import subprocess
import sys
import threading

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def latency_server(latency_ms, jitter_ms, seed):
    """Runs in its own process (python -I -c): every page takes latency_ms ± jitter_ms to arrive."""
    import http.server
    import random
    import time

    class SlowPages(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: each client thread reuses its connection
        disable_nagle_algorithm = True  # headers and body leave at once, not 40 ms apart

        def do_GET(self):
            page = int(self.path.rsplit("/", 1)[-1])
            jitter = random.Random(seed * 1_000_003 + page).uniform(-jitter_ms, jitter_ms)  # the same every run
            time.sleep(max(0.0, latency_ms + jitter) / 1000)
            body = f"<html><body><h1>Page {page}</h1></body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass  # no line per request on stderr

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 128  # the default 5 would drop connections when 32 threads connect at once

    with Server(("127.0.0.1", 0), SlowPages) as server:
        print(server.server_address[1], flush=True)  # the port, for the experiment to connect to
        server.serve_forever()


local = threading.local()


def fetch(url, probe):
    import requests  # the one module here beyond the standard library

    if not hasattr(local, "session"):
        local.session = requests.Session()  # one per thread: requests does not promise a shared one is safe
        local.session.trust_env = False  # no proxy from the environment: the server is on 127.0.0.1
    with probe.phase("GET /" + url.split("/", 3)[-1]):  # a span per request in this thread's lane
        response = local.session.get(url, timeout=10)  # the GIL is released while waiting for the reply
    response.raise_for_status()
    return len(response.content)


def fetch_from_queue(urls, sizes, probe):
    while True:
        try:
            url = urls.get_nowait()
        except queue.Empty:
            return  # no page left
        sizes.append(fetch(url, probe))


def run(params, probe):
    pages, count = params["pages"], params["threads"]
    # A fresh process (never a fork of this multi-threaded one), listening on loopback only.
    arguments = f"{params['latency_ms']}, {params['jitter_ms']}, {params['seed']}"
    source = inspect.getsource(latency_server) + f"\nlatency_server({arguments})\n"
    server = subprocess.Popen([sys.executable, "-I", "-c", source], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        port = server.stdout.readline()
        if not port:
            raise RuntimeError(f"the page server did not start (exit status {server.wait()})")
        urls = [f"http://127.0.0.1:{int(port)}/page/{n}" for n in range(pages + 1)]
        fetch(urls.pop(), probe)  # import requests and connect once, untimed
        with probe.phase("one after another") as sequential:
            in_order = [fetch(url, probe) for url in urls]
        todo, sizes = queue.Queue(), []
        for url in urls:
            todo.put(url)
        threads = [
            threading.Thread(target=fetch_from_queue, args=(todo, sizes, probe), name=f"fetcher-{n}")
            for n in range(count)
        ]
        with probe.phase(f"{count} threads") as threaded:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        server.kill()  # whatever happened above: no server outlives the run
        server.wait()

    speedup = sequential.wall_ns / threaded.wall_ns
    needed = 0.5 * min(count, pages)
    return Outcome(
        claim=f"{count} threads fetch {pages} pages at least {needed:g}x faster than one after another.",
        held=speedup >= needed and len(sizes) == pages and sum(sizes) == sum(in_order),
        why=(
            f"One after another: {sequential.wall_ms:.0f} ms; {count} threads: {threaded.wall_ms:.0f} ms, "
            f"{speedup:.2f}x (at most {min(count, pages)}x: each thread takes the next page from a queue). "
            f"{len(sizes)} of {pages} pages arrived. While a thread waits for a reply it holds no GIL, but "
            f"requests' own Python code takes it: {threaded.cpu_ms:.0f} ms of CPU in the threaded phase."
        ),
        metrics={
            "sequential_ms": round(sequential.wall_ms, 2),
            "threaded_ms": round(threaded.wall_ms, 2),
            "speedup": round(speedup, 3),
            "pages_fetched": len(sizes),
            "threaded_cpu_ms": round(threaded.cpu_ms, 2),
        },
    )


EXPERIMENT = Experiment(
    slug="web-scraping",
    title="Scraping web pages with threads",
    summary="Fetch pages with requests from a slow local server: one after another, then from a pool of threads.",
    lesson=(
        "Downloading a page is mostly waiting for the server, and requests releases the GIL while it "
        "waits. A few threads that take pages from a shared queue keep several requests in flight at once. "
        "The server runs in its own process on 127.0.0.1 and answers each page after a set delay."
    ),
    claim="With T threads, P pages arrive at least 0.5 x min(T, P) times faster than one after another.",
    params=(
        Param("threads", int, 4, "Fetcher threads taking pages from the queue.", label="Threads", min=1, max=32),
        Param("pages", int, 16, "How many pages to fetch.", label="Pages", min=1, max=64),
        Param("latency_ms", int, 80, "How long the server takes per page.", label="Latency (ms)", min=5, max=500),
        Param("jitter_ms", int, 20, "Random spread around the latency, ±.", label="Jitter (ms)", min=0, max=200),
        Param(
            "seed", int, 1, "Seed of the jitter: the same seed gives the same delays.", label="Seed", min=0, max=10**6
        ),
    ),
    metrics=(
        Metric("sequential_ms", "ms", "Wall time of all pages fetched one after another."),
        Metric("threaded_ms", "ms", "Wall time of the same pages fetched by the threads."),
        Metric("speedup", "x", "sequential_ms / threaded_ms."),
        Metric("pages_fetched", "pages", "Pages the threads fetched (should be all of them)."),
        Metric("threaded_cpu_ms", "ms", "Process CPU time during the threaded phase."),
    ),
    code=(latency_server, fetch, fetch_from_queue, run),
    run=run,
    limits=Limits(wall_s=60, max_threads=32),
    requires=("requests",),
    cases=({"threads": 8, "pages": 32},),
)
