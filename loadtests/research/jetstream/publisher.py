"""Raw-socket JetStream batch publisher (research prototype).

publish_batch(events) -> [(stream_seq, duplicate), ...]   events: [(subject, uuid_str, payload_bytes)]
mode="atomic": ADR-50 atomic batch (server >= 2.12, stream allow_atomic), probe fallback on 10201.
mode="per_msg": one HPUB with its own reply per event, per-event PubAcks (any server >= 2.2).
"""
import asyncio, json, re, uuid

MSG_RE = re.compile(rb"MSG[ \t]+([^ \t\r]+)[ \t]+[^ \t\r]+[ \t]+(?:[^ \t\r]+[ \t]+)?(\d+)\r\n")   # 2.9 sends "sid  size"
HMSG_RE = re.compile(rb"HMSG[ \t]+([^ \t\r]+)[ \t]+[^ \t\r]+[ \t]+(?:[^ \t\r]+[ \t]+)?(\d+)[ \t]+(\d+)\r\n")
SEQ_RE = re.compile(rb'"seq":(\d+)')
PROBE_HDR = b"Nats-Expected-Last-Msg-Id: \x7eprobe\x7e\r\n"   # never a real last msg id -> new ids are rejected, dups acked
MAX_ATOMIC = 1000


class JetStreamError(Exception):
    def __init__(self, err):
        super().__init__(err); self.err = err; self.code = err.get("err_code")


class _Proto(asyncio.Protocol):
    def __init__(self, pub):
        self.pub, self.buf = pub, bytearray()

    def connection_made(self, t):
        self.t = t

    def connection_lost(self, exc):
        self.pub._fail_all(exc or ConnectionError("nats connection closed"))

    def data_received(self, data):
        buf = self.buf; buf += data; pos = 0; n = len(buf)
        while pos < n:
            if buf.startswith(b"MSG ", pos):
                m = MSG_RE.match(buf, pos)
                if not m:
                    break
                start = m.end(); end = start + int(m[2])
                if end + 2 > n:
                    break
                self.pub._on_reply(m[1], bytes(buf[start:end])); pos = end + 2
            elif buf.startswith(b"HMSG ", pos):        # status message, e.g. 503 no responders
                m = HMSG_RE.match(buf, pos)
                if not m:
                    break
                end = m.end() + int(m[3])
                if end + 2 > n:
                    break
                self.pub._on_reply(m[1], b'{"error":{"code":503,"err_code":0,"description":"no responders"}}'); pos = end + 2
            else:
                e = buf.find(b"\r\n", pos)
                if e < 0:
                    break
                line = bytes(buf[pos:e]); pos = e + 2
                if line == b"PING":
                    self.t.write(b"PONG\r\n")
                elif line == b"PONG":
                    self.pub._on_pong()
                elif line.startswith(b"-ERR"):
                    self.pub._fail_all(ConnectionError(line.decode()))
        del buf[:pos]


class JsBatchPublisher:
    def __init__(self, mode="atomic", max_inflight=16):
        self.mode = mode; self.pending = {}; self.next = 0
        self.sem = asyncio.Semaphore(max_inflight)   # bounds msgs queued at the stream (server drops past max_buffered_msgs)

    async def connect(self, host="127.0.0.1", port=4222):
        loop = asyncio.get_running_loop()
        self.prefix = b"_JSB.%s" % uuid.uuid4().hex.encode(); self.plen = len(self.prefix) + 1
        self.t, self.p = await loop.create_connection(lambda: _Proto(self), host, port)
        self._pong = loop.create_future()
        self.t.write(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\n'
                     b"SUB %s.> 1\r\nPING\r\n" % self.prefix)
        await self._pong
        return self

    # ---- reply plumbing -------------------------------------------------------------------------
    def _on_pong(self):
        if not self._pong.done():
            self._pong.set_result(None)

    def _on_reply(self, subject, data):
        bid, _, idx = subject[self.plen:].partition(b".")
        b = self.pending.get(int(bid))
        if b is None:
            return
        res, fut = b[0], b[2]; i = int(idx)
        if res[i] is not None:
            return
        if data.startswith(b'{"error"'):
            res[i] = JetStreamError(json.loads(data)["error"])
        else:
            res[i] = (int(SEQ_RE.search(data)[1]), b'"duplicate"' in data)
        b[1] -= 1
        if b[1] == 0:
            del self.pending[int(bid)]
            fut.set_result(res)

    def _fail_all(self, exc):
        for res, left, fut in self.pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self.pending.clear()

    def _new(self, n):
        bid = self.next; self.next += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[bid] = [[None] * n, n, fut]
        return bid, fut

    async def _roundtrip(self, n, build, timeout=10.0):
        bid, fut = self._new(n)
        self.t.write(build(b"%s.%d." % (self.prefix, bid)))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(bid, None)

    # ---- frame builders --------------------------------------------------------------------------
    @staticmethod
    def _per_msg_frames(evs, extra=b""):
        def build(rp):
            out = []
            for i, (s, u, p) in enumerate(evs):
                h = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n%s\r\n" % (u.encode(), extra)
                out.append(b"HPUB %s %s%d %d %d\r\n%s%s\r\n" % (s.encode(), rp, i, len(h), len(h) + len(p), h, p))
            return b"".join(out)
        return build

    @staticmethod
    def _atomic_frames(evs):
        def build(rp):
            bid = rp.rstrip(b".").rsplit(b".", 1)[1] + uuid.uuid4().hex[:8].encode()
            out = []; n = len(evs)
            for i, (s, u, p) in enumerate(evs, 1):
                last = i == n
                h = b"NATS/1.0\r\nNats-Batch-Id: %s\r\nNats-Batch-Sequence: %d\r\nNats-Msg-Id: %s\r\n%s\r\n" % (
                    bid, i, u.encode(), b"Nats-Batch-Commit: 1\r\n" if last else b"")
                rep = b" %s0" % rp if last else b""
                out.append(b"HPUB %s%s %d %d\r\n%s%s\r\n" % (s.encode(), rep, len(h), len(h) + len(p), h, p))
            return b"".join(out)
        return build

    # ---- public API ------------------------------------------------------------------------------
    async def publish_batch(self, events):
        async with self.sem:
            if self.mode == "per_msg":
                res = await self._roundtrip(len(events), self._per_msg_frames(events))
                for r in res:
                    if isinstance(r, Exception):
                        raise r
                return res
            out = [None] * len(events); first = {}; alias = []
            todo = []
            for i, (s, u, p) in enumerate(events):          # intra-request duplicates: later copy aliases the first
                j = first.setdefault(u, i)
                (todo if j == i else alias).append(i if j == i else (i, j))
            for c in range(0, len(todo), MAX_ATOMIC):
                await self._atomic_chunk(events, todo[c:c + MAX_ATOMIC], out)
            for i, j in alias:
                out[i] = (out[j][0], True)
            return out

    async def _atomic_chunk(self, events, idxs, out, attempts=3):
        for _ in range(attempts):
            if not idxs:
                return
            evs = [events[i] for i in idxs]
            (r,) = await self._roundtrip(1, self._atomic_frames(evs))
            if not isinstance(r, Exception):
                last = r[0]; n = len(idxs)
                for k, i in enumerate(idxs):
                    out[i] = (last - n + 1 + k, False)
                return
            if r.code != 10201:          # 10201 = atomic publish batch contains duplicate message id
                raise r
            probe = await self._roundtrip(len(evs), self._per_msg_frames(evs, PROBE_HDR))
            keep = []
            for i, pr in zip(idxs, probe):
                if isinstance(pr, Exception):
                    if pr.code != 10070:   # 10070 = wrong last msg ID -> not a duplicate, nothing stored
                        raise pr
                    keep.append(i)
                else:
                    out[i] = pr            # (original seq, True)
            idxs = keep
        raise RuntimeError("atomic batch kept conflicting on duplicates")
