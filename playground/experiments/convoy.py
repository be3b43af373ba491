"""convoy: an I/O thread beside a CPU-bound thread waits about one switch interval for the GIL per reply."""

import inspect
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

from .declaration import Experiment, Limits, Outcome
from .params import Metric, Param


def echo_server(delay_s):
    """Runs in its own process (python -I -c): sends every byte back after a network-like delay."""
    import socket
    import time

    with socket.create_server(("127.0.0.1", 0)) as server:
        print(server.getsockname()[1], flush=True)  # the port, for the experiment to connect to
        connection, _ = server.accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := connection.recv(1):
            time.sleep(delay_s)
            connection.sendall(data)


def round_trips(connection, count, times):
    for _ in range(count):
        start = time.perf_counter_ns()
        connection.sendall(b"x")
        connection.recv(1)  # the GIL is released while the reply travels; then this thread needs it back
        times.append(time.perf_counter_ns() - start)


def spin(stop):
    while not stop.is_set():
        pass  # pure Python: holds the GIL until made to hand it over, every switch interval


def run(params, probe):
    count, spinners, previous = params["round_trips"], params["threads"], sys.getswitchinterval()
    # A fresh process (never a fork of this multi-threaded one), listening on loopback only.
    source = inspect.getsource(echo_server) + f"\necho_server({params['reply_us'] / 1e6})\n"
    server = subprocess.Popen([sys.executable, "-I", "-c", source], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    cores = os.sched_getaffinity(0)
    try:
        port = server.stdout.readline()
        if not port:
            raise RuntimeError(f"the echo server did not start (exit status {server.wait()})")
        with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as connection:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # send each byte at once
            sys.setswitchinterval(params["switch_interval_ms"] / 1000)
            # The threads started below share one core, as on a busy machine: the CPU-bound thread is
            # then running whenever a reply arrives. (A thread woken on an idle core can take longer to
            # start than the reply takes to come back, and the I/O thread would keep the GIL.)
            os.sched_setaffinity(0, {max(cores)})
            alone, beside, stop = [], [], threading.Event()
            with probe.phase("echo alone"):
                client = threading.Thread(target=round_trips, args=(connection, count, alone), name="echo-client")
                client.start()
                client.join()
            with probe.phase(f"echo beside {spinners} CPU-bound thread(s)"):
                names = ["cpu-spinner"] if spinners == 1 else [f"cpu-spinner-{n}" for n in range(spinners)]
                threads = [threading.Thread(target=spin, args=(stop,), name=name) for name in names]
                threads.append(
                    threading.Thread(target=round_trips, args=(connection, count, beside), name="echo-client")
                )
                for thread in threads:
                    thread.start()
                threads[-1].join()
                stop.set()
                for thread in threads:
                    thread.join()
    finally:
        os.sched_setaffinity(0, cores)
        sys.setswitchinterval(previous)
        server.kill()  # whatever happened above: no echo server outlives the run
        server.wait()
    return verdict(params, alone, beside, probe.interpreter["gil_enabled"])


def verdict(params, alone, beside, gil):
    interval_us, spinners = params["switch_interval_ms"] * 1000, params["threads"]
    alone_us, beside_us = statistics.median(alone) / 1000, statistics.median(beside) / 1000
    extra_us = beside_us - alone_us
    if gil:
        most = 2 * spinners + 1  # the GIL may go to another CPU-bound thread first
        claim = (
            f"Beside {spinners} CPU-bound thread(s), each round trip also waits for the GIL: about one switch "
            f"interval ({interval_us:g} µs) more, between 0.5 and {most} intervals (plus 200 µs of hand-over costs)."
        )
        held = 0.5 * interval_us <= extra_us <= most * interval_us + 200
    else:
        claim = "Without the GIL there is no convoy: a round trip beside CPU-bound threads grows by less than half a switch interval."
        held = extra_us < max(interval_us / 2, alone_us)
    why = (
        f"Median round trip alone: {alone_us:.0f} µs; beside {spinners} CPU-bound thread(s): {beside_us:.0f} µs, "
        f"{beside_us / alone_us:.0f}x slower, {extra_us / interval_us:.2f} switch intervals of {interval_us:g} µs more. "
        f"Over {len(beside)} round trips the client waited {(sum(beside) - sum(alone)) / 1e6:.0f} ms more in all."
    )
    metrics = {
        "alone_median_us": round(alone_us, 1),
        "beside_median_us": round(beside_us, 1),
        "slowdown": round(beside_us / alone_us, 1),
        "extra_intervals": round(extra_us / interval_us, 2),
        "alone_p90_us": round(statistics.quantiles(alone, n=10)[-1] / 1000, 1),
        "beside_p90_us": round(statistics.quantiles(beside, n=10)[-1] / 1000, 1),
    }
    return Outcome(claim=claim, held=held, why=why, metrics=metrics)


EXPERIMENT = Experiment(
    slug="convoy",
    title="The convoy effect: I/O beside a CPU-bound thread",
    summary="A fast socket round trip takes a whole GIL switch interval longer when a CPU-bound thread runs beside it.",
    lesson=(
        "A thread waiting for a reply releases the GIL, and a CPU-bound thread takes it. When the reply "
        "arrives, the I/O thread must wait until the CPU-bound thread is made to hand the GIL back, after "
        "sys.getswitchinterval() (5 ms by default). Change the interval and watch each round trip follow it."
    ),
    claim="Beside a CPU-bound thread, each round trip takes about one switch interval longer than alone.",
    params=(
        Param("threads", int, 1, "CPU-bound threads beside the echo client.", label="CPU-bound threads", min=1, max=3),
        Param(
            "switch_interval_ms",
            float,
            5.0,
            "sys.setswitchinterval for the run: how long a thread may keep the GIL while another waits.",
            label="Switch interval (ms)",
            min=0.05,
            max=20.0,
        ),
        Param(
            "reply_us",
            int,
            50,
            "How long the echo server waits before it replies, as a fast network would.",
            label="Reply delay (µs)",
            min=50,
            max=2000,
        ),
        Param("round_trips", int, 100, "1-byte round trips in each phase.", label="Round trips", min=10, max=200),
    ),
    metrics=(
        Metric("alone_median_us", "µs", "Median round trip with no other thread running."),
        Metric("beside_median_us", "µs", "Median round trip with a CPU-bound thread beside the client."),
        Metric("slowdown", "x", "beside_median_us / alone_median_us."),
        Metric("extra_intervals", "intervals", "(beside_median_us - alone_median_us) / the switch interval."),
        Metric("alone_p90_us", "µs", "90th percentile round trip alone."),
        Metric("beside_p90_us", "µs", "90th percentile round trip beside the CPU-bound thread."),
    ),
    code=(echo_server, round_trips, spin, run, verdict),
    run=run,
    limits=Limits(wall_s=60, cpu_s=60, max_threads=4),
    cases=({"switch_interval_ms": 0.5}, {"switch_interval_ms": 20.0, "round_trips": 50}),
    notes=(
        "The echo server runs in its own process and replies after a short delay, as a network would. "
        "The client and the CPU-bound threads are kept on one core: on a machine with an idle core, a thread "
        "woken for the GIL can take longer to get running than a fast reply takes to arrive (virtual machines "
        "especially), and then the I/O thread keeps the GIL and the convoy comes and goes. On a free-threaded "
        "build there is no GIL to wait for, and the claim is that the round trip barely grows."
    ),
)
