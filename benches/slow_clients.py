#!/usr/bin/env python3
"""Hostile clients against `netcalc serve` over loopback, measured from
the outside: the server's threads and resident memory while N clients hold connections open.

    benches/slow_clients.py PID PORT [--clients 1000] [--kind headers|body]

- headers: each client sends the start of a request and then nothing (a slow-header
  client); the server must close each after --header-timeout.
- body: each client declares a 1 GB body (Content-Length) and keeps the connection open; each
  must get 413 at once.

Meanwhile one normal request (GET /healthz) is timed. Prints the server's thread count and RSS
before, while the clients are connected, and after; how many connections the server closed;
and the normal request's latency. Bounded: every socket has a 30 s timeout, loopback only.
"""

import argparse
import socket
import time


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024


def healthz_ms(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    t = time.perf_counter()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = s.recv(4096)
    ms = 1000 * (time.perf_counter() - t)
    s.close()
    return ms, data.split(b"\r\n", 1)[0].decode(errors="replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("port", type=int)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--kind", choices=["headers", "body"], default="headers")
    ap.add_argument("--hold", type=float, default=3.0, help="seconds to hold before measuring")
    a = ap.parse_args()
    threads0, rss0 = status(a.pid)
    socks = []
    for _ in range(a.clients):
        s = socket.create_connection(("127.0.0.1", a.port), timeout=30)
        if a.kind == "headers":
            s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\n")
        else:
            s.sendall(
                b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                b"Content-Length: 1000000000\r\n\r\n" + b"\0" * 1024
            )
        socks.append(s)
    start = time.time()
    time.sleep(a.hold)
    threads1, rss1 = status(a.pid)
    ms, line = healthz_ms(a.port)
    print(f"{a.clients} {a.kind} clients connected: threads {threads0} -> {threads1}, "
          f"RSS {rss0:.0f} -> {rss1:.0f} MB (+{rss1 - rss0:.0f}); /healthz meanwhile: {line}, {ms:.1f} ms")
    # how each client's connection ends: a status line, or closed without one
    answers = {}
    for s in socks:
        s.settimeout(max(1.0, 30 - (time.time() - start)))
        try:
            data = s.recv(4096)
            key = data.split(b"\r\n", 1)[0].decode(errors="replace") if data else "closed, no answer"
        except socket.timeout:
            key = "still open after 30 s"
        except ConnectionResetError:
            key = "reset"
        answers[key] = answers.get(key, 0) + 1
    elapsed = time.time() - start
    threads2, rss2 = status(a.pid)
    print(f"ends after {elapsed:.1f} s: " + ", ".join(f"{n} {k}" for k, n in sorted(answers.items())))
    print(f"after: threads {threads2}, RSS {rss2:.0f} MB")
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
