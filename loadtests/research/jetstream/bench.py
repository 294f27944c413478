import asyncio, json, os, sys, time, uuid, argparse
import nats
from nats.js.api import StreamConfig, StorageType

STREAM = "QIMING"
NSHARD = 16
PAYLOAD = os.urandom(100).hex().encode()  # 200 bytes


def server_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def sys_busy():
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:]))
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def make_batches(nbatches, bs):
    out = []
    for _ in range(nbatches):
        out.append([(f"qiming.events.{i % NSHARD}", str(uuid.uuid4()), PAYLOAD) for i in range(bs)])
    return out


async def setup_stream(js, **extra):
    try:
        await js.delete_stream(STREAM)
    except Exception:
        pass
    if os.environ.get("STORAGE") == "memory":
        extra["storage"] = StorageType.MEMORY
    else:
        extra["storage"] = StorageType.FILE
    if os.environ.get("PERSIST"):
        extra["persist_mode"] = os.environ["PERSIST"]
    if os.environ.get("DUPWIN"):
        extra["duplicate_window"] = float(os.environ["DUPWIN"])
    await js.add_stream(StreamConfig(name=STREAM, subjects=["qiming.events.>"], **extra))
    si = await js.stream_info(STREAM)
    print("stream cfg:", si.config.storage, si.config.persist_mode, si.config.duplicate_window, file=sys.stderr)


# ---------------- mode implementations: each returns coroutine publish_batch(batch) -> list of acks -------------
async def mk_seq(nc, js):
    async def pb(batch):
        return [await js.publish(s, p, headers={"Nats-Msg-Id": u}) for s, u, p in batch]
    return pb


async def mk_gather(nc, js):
    async def pb(batch):
        return await asyncio.gather(*[js.publish(s, p, headers={"Nats-Msg-Id": u}) for s, u, p in batch])
    return pb


async def mk_pubasync(nc, js):
    async def pb(batch):
        futs = [await js.publish_async(s, p, headers={"Nats-Msg-Id": u}) for s, u, p in batch]
        return await asyncio.gather(*futs)
    return pb


class AckCollector:
    """Collects JetStream acks for a batch keyed by reply token <prefix>.<bid>.<idx>."""
    def __init__(self):
        self.batches = {}  # bid -> [results, remaining, future]
        self.next_bid = 0

    def new(self, n):
        bid = self.next_bid; self.next_bid += 1
        fut = asyncio.get_running_loop().create_future()
        self.batches[bid] = [[None] * n, n, fut]
        return bid, fut

    def on_ack(self, bid, idx, data):
        b = self.batches.get(bid)
        if b is None or b[0][idx] is not None:
            return
        b[0][idx] = json.loads(data)
        b[1] -= 1
        if b[1] == 0:
            del self.batches[bid]
            b[2].set_result(b[0])


async def mk_raw_nc(nc, js):
    col = AckCollector()
    prefix = nc.new_inbox()
    plen = len(prefix) + 1

    async def cb(msg):
        bid, idx = msg.subject[plen:].split(".")
        col.on_ack(int(bid), int(idx), msg.data)
    await nc.subscribe(prefix + ".>", cb=cb, pending_msgs_limit=1_000_000, pending_bytes_limit=1 << 30)

    async def pb(batch):
        bid, fut = col.new(len(batch))
        for i, (s, u, p) in enumerate(batch):
            await nc.publish(s, p, reply=f"{prefix}.{bid}.{i}", headers={"Nats-Msg-Id": u})
        return await fut
    return pb


NOMSGID = os.environ.get("NOMSGID") == "1"


def encode_frames(batch, prefix, bid, extra_hdrs=b""):
    parts = []
    if NOMSGID:
        for i, (s, u, p) in enumerate(batch):
            parts.append(b"PUB %s %s.%d.%d %d\r\n%s\r\n" % (s.encode(), prefix, bid, i, len(p), p))
        return b"".join(parts)
    for i, (s, u, p) in enumerate(batch):
        hdr = b"NATS/1.0\r\nNats-Msg-Id: " + u.encode() + b"\r\n" + extra_hdrs + b"\r\n"
        parts.append(b"HPUB %s %s.%d.%d %d %d\r\n%s%s\r\n" % (s.encode(), prefix, bid, i, len(hdr), len(hdr) + len(p), hdr, p))
    return b"".join(parts)


async def mk_frames_nc(nc, js):
    """Pre-encode HPUB frames, push into nats-py's pending buffer in one go; acks via nats-py sub."""
    col = AckCollector()
    prefix = nc.new_inbox()
    plen = len(prefix) + 1

    async def cb(msg):
        bid, idx = msg.subject[plen:].split(".")
        col.on_ack(int(bid), int(idx), msg.data)
    await nc.subscribe(prefix + ".>", cb=cb, pending_msgs_limit=1_000_000, pending_bytes_limit=1 << 30)
    bprefix = prefix.encode()

    async def pb(batch):
        bid, fut = col.new(len(batch))
        await nc._send_command(encode_frames(batch, bprefix, bid))
        await nc._flush_pending()
        return await fut
    return pb


class RawProto(asyncio.Protocol):
    """Minimal NATS client: one socket, HPUB out, MSG in (acks)."""
    def __init__(self, col, plen, on_msg=None):
        self.buf = bytearray(); self.col = col; self.plen = plen
        self.on_msg = on_msg or self.default_on_msg
        self.connected = asyncio.get_event_loop().create_future()

    def default_on_msg(self, tail, data):
        bid, idx = tail.split(b".")
        self.col.on_ack(int(bid), int(idx), data)

    def connection_made(self, t):
        self.t = t

    def data_received(self, data):
        buf = self.buf; buf += data
        pos = 0; n = len(buf)
        while True:
            e = buf.find(b"\r\n", pos)
            if e < 0:
                break
            if buf.startswith(b"MSG ", pos):
                line = bytes(buf[pos + 4:e]).split()
                size = int(line[-1])
                if e + 2 + size + 2 > n:
                    break
                data = bytes(buf[e + 2:e + 2 + size])
                self.on_msg(line[0][self.plen:], data)
                pos = e + 2 + size + 2
            elif buf.startswith(b"HMSG ", pos):
                line = bytes(buf[pos + 5:e]).split()
                size = int(line[-1])
                if e + 2 + size + 2 > n:
                    break
                raise RuntimeError(("status msg", bytes(buf[e + 2:e + 2 + size])))
            else:
                line = bytes(buf[pos:e])
                if line == b"PING":
                    self.t.write(b"PONG\r\n")
                elif line == b"PONG" and not self.connected.done():
                    self.connected.set_result(True)
                elif line.startswith(b"-ERR"):
                    print("ERR", line, file=sys.stderr)
                pos = e + 2
        del buf[:pos]


async def raw_connect(col, port, on_msg=None):
    prefix = b"_RAWINBOX.%s" % uuid.uuid4().hex.encode()
    loop = asyncio.get_running_loop()
    t, proto = await loop.create_connection(lambda: RawProto(col, len(prefix) + 1, on_msg), "127.0.0.1", port)
    t.write(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\n'
            b"SUB %s.> 1\r\nPING\r\n" % prefix)
    await proto.connected
    return t, proto, prefix


def encode_atomic(batch, prefix, bid):
    parts = []; n = len(batch); b = b"%d" % bid
    for i, (s, u, p) in enumerate(batch, 1):
        if i < n:
            hdr = b"NATS/1.0\r\nNats-Batch-Id: b%s\r\nNats-Batch-Sequence: %d\r\nNats-Msg-Id: %s\r\n\r\n" % (b, i, u.encode())
            parts.append(b"HPUB %s %d %d\r\n%s%s\r\n" % (s.encode(), len(hdr), len(hdr) + len(p), hdr, p))
        else:
            hdr = (b"NATS/1.0\r\nNats-Batch-Id: b%s\r\nNats-Batch-Sequence: %d\r\nNats-Msg-Id: %s\r\nNats-Batch-Commit: 1\r\n\r\n"
                   % (b, i, u.encode()))
            parts.append(b"HPUB %s %s.%s.0 %d %d\r\n%s%s\r\n" % (s.encode(), prefix, b, len(hdr), len(hdr) + len(p), hdr, p))
    return b"".join(parts)


async def mk_atomic_own(nc, js, port):
    col = AckCollector()
    t, proto, prefix = await raw_connect(col, port)

    async def pb(batch):
        bid, fut = col.new(1)
        t.write(encode_atomic(batch, prefix, bid))
        ack = (await fut)[0]
        assert "error" not in ack, ack
        last, n = ack["seq"], ack["count"]
        return [{"seq": last - n + 1 + i} for i in range(n)]
    return pb


async def mk_fast_own(nc, js, port, flow=500):
    col = AckCollector()

    def on_msg(tail, data):
        if data.startswith(b'{"type"'):
            if not data.startswith(b'{"type":"ack"'):
                print("FAST", tail, data, file=sys.stderr)
            return
        bid = int(tail.split(b".")[0])
        col.on_ack(bid, 0, data)
    t, proto, prefix = await raw_connect(col, port, on_msg)

    async def pb(batch):
        bid, fut = col.new(1)
        n = len(batch); parts = []
        for i, (s, u, p) in enumerate(batch, 1):
            op = 0 if i == 1 else (2 if i == n else 1)
            hdr = b"NATS/1.0\r\nNats-Msg-Id: " + u.encode() + b"\r\n\r\n"
            parts.append(b"HPUB %s %s.%d.%d.fail.%d.%d.$FI %d %d\r\n%s%s\r\n" % (s.encode(), prefix, bid, flow, i, op, len(hdr), len(hdr) + len(p), hdr, p))
        t.write(b"".join(parts))
        ack = (await fut)[0]
        assert "error" not in ack, ack
        return [{"seq": 0}] * n
    return pb


async def mk_noack_own(nc, js, port):
    col = AckCollector()
    t, proto, prefix = await raw_connect(col, port)

    async def pb(batch):
        parts = []
        for s, u, p in batch:
            hdr = b"NATS/1.0\r\nNats-Msg-Id: " + u.encode() + b"\r\n\r\n"
            parts.append(b"HPUB %s %d %d\r\n%s%s\r\n" % (s.encode(), len(hdr), len(hdr) + len(p), hdr, p))
        t.write(b"".join(parts))
        await asyncio.sleep(0)
        return [{"seq": 0}] * len(batch)
    return pb


async def mk_frames_own(nc, js, port):
    col = AckCollector()
    t, proto, prefix = await raw_connect(col, port)

    async def pb(batch):
        bid, fut = col.new(len(batch))
        t.write(encode_frames(batch, prefix, bid))
        return await fut
    return pb


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode"); ap.add_argument("--port", type=int, default=14222)
    ap.add_argument("--batches", type=int, default=50); ap.add_argument("--bs", type=int, default=1000)
    ap.add_argument("--conc", type=int, default=1, help="batches in flight")
    ap.add_argument("--spid", type=int, required=True)
    a = ap.parse_args()
    nc = await nats.connect(f"nats://127.0.0.1:{a.port}", pending_size=64 * 1024 * 1024)
    js = nc.jetstream(publish_async_max_pending=100_000)
    await setup_stream(js, **({"allow_atomic": True} if a.mode.startswith("atomic") else {"allow_batched": True} if a.mode.startswith("fast") else {}))
    if a.mode.endswith("_own"):
        pb = await globals()["mk_" + a.mode](nc, js, a.port)
    else:
        pb = await globals()["mk_" + a.mode](nc, js)
    # warmup
    await pb(make_batches(1, a.bs)[0])
    batches = make_batches(a.batches, a.bs)
    q = asyncio.Queue()
    for b in batches:
        q.put_nowait(b)
    dups = 0; stored = 0

    async def worker():
        nonlocal dups, stored
        while not q.empty():
            acks = await pb(q.get_nowait())
            for r in acks:
                if isinstance(r, dict):
                    assert "error" not in r, r
                    if r.get("duplicate"): dups += 1
                    else: stored += 1
                else:
                    if r.duplicate: dups += 1
                    else: stored += 1
    b0 = sys_busy(); c0 = time.process_time(); s0 = server_cpu(a.spid); t0 = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(a.conc)])
    if a.mode == "noack_own":
        while (await js.stream_info(STREAM)).state.messages < (a.batches + 1) * a.bs:
            await asyncio.sleep(0.005)
    dt = time.perf_counter() - t0; cpu = time.process_time() - c0; scpu = server_cpu(a.spid) - s0
    other = sys_busy() - b0 - cpu - scpu
    n = a.batches * a.bs
    print(f"{a.mode:10s} port={a.port} conc={a.conc} n={n} {n/dt:10.0f} msg/s  batch_lat={dt/a.batches*a.conc*1000:7.1f}ms "
          f"py_cpu={cpu/dt*100:5.1f}% ({cpu/n*1e6:5.2f}us/msg) server_cpu={scpu/dt*100:5.1f}% ({scpu/n*1e6:5.2f}us/msg) other={other/dt*100:4.0f}% stored={stored} dups={dups}")
    await nc.close()

asyncio.run(main())
