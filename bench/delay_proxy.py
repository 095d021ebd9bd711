#!/usr/bin/env python3
"""delay_proxy - a TCP proxy that adds network latency, for benchmarks.

    bench/delay_proxy.py --listen 127.0.0.1:PORT --target 127.0.0.1:RGWPORT
                         --rtt-ms N [--pid-file FILE] [--ready-file FILE]

Forwards every connection accepted on --listen to --target (one upstream
connection per client connection, so keep-alive and concurrent connections
behave as they would without the proxy) and copies bytes unchanged in both
directions.

The delay model, exactly:
  - Each direction of each connection is a FIFO line. A chunk of bytes
    read from one side (whatever recv() returned, at most 256 KiB) is
    written to the other side N/2 ms after it was read, in order. Chunks
    are pipelined: a second chunk read 1 ms after the first is written
    1 ms after the first, not N/2 ms after it. So a request and its
    response cost N ms more than direct, and bandwidth is not limited by
    the delay (a line holds at most 64 chunks, 16 MiB, in flight; past
    that the reader waits: a window of 16 MiB per N/2 ms).
  - A new connection costs one more RTT, the TCP handshake: the first
    client-to-server chunk of a connection is held N ms more (upstream
    connect itself is on loopback and not delayed further).
  - No loss, jitter or bandwidth cap. An EOF is forwarded (half-close)
    after the data queued before it; a reset or error on either side
    closes both.
With --rtt-ms 0 the proxy adds no delay but still copies every byte (its
own cost stays in the measurement, so figures at 0 and N ms compare).

Runs until SIGTERM/SIGINT. Python 3.7+, standard library only.
"""

import argparse
import asyncio
import os
import signal
import sys

CHUNK = 256 * 1024
LINE_CHUNKS = 64


def parse_hostport(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


async def pump(reader, writer, delay, first_extra):
    """Copy reader -> writer, each chunk written `delay` s after it was read
    (the first chunk `delay + first_extra` s). Returns at EOF or error."""
    loop = asyncio.get_running_loop()
    q = asyncio.Queue(maxsize=LINE_CHUNKS)

    async def rd():
        extra = first_extra
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                await q.put((loop.time() + delay + extra, data))
                extra = 0.0
        except (ConnectionError, OSError):
            pass
        finally:
            await q.put((loop.time() + delay, None))

    async def wr():
        while True:
            due, data = await q.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    rt = asyncio.ensure_future(rd())
    try:
        await wr()
    finally:
        rt.cancel()


async def handle(creader, cwriter, target, delay):
    try:
        sreader, swriter = await asyncio.open_connection(*target)
    except OSError:
        cwriter.close()
        return
    up = asyncio.ensure_future(pump(creader, swriter, delay, 2 * delay))
    down = asyncio.ensure_future(pump(sreader, cwriter, delay, 0.0))
    try:
        # Half-close in one direction keeps the other running; an error in
        # either ends both.
        done, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if t.exception() is not None:
                raise t.exception()
    except (ConnectionError, OSError):
        pass
    finally:
        for t in (up, down):
            t.cancel()
        for w in (swriter, cwriter):
            try:
                w.close()
            except Exception:
                pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT to listen on")
    ap.add_argument("--target", required=True, help="HOST:PORT to forward to")
    ap.add_argument("--rtt-ms", type=float, default=0.0, help="added round trip, ms")
    ap.add_argument("--pid-file")
    ap.add_argument("--ready-file", help="written once listening")
    a = ap.parse_args()
    delay = a.rtt_ms / 2000.0
    target = parse_hostport(a.target)
    host, port = parse_hostport(a.listen)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, target, delay), host, port, reuse_address=True, backlog=512)
    if a.pid_file:
        with open(a.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write("%s:%d rtt_ms=%g\n" % (host, port, a.rtt_ms))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
