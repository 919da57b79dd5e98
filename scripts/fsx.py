#!/usr/bin/env python3
"""A file exerciser: random reads, writes, truncates, mmap reads and writes, fsyncs and
close/reopens on one file, every result checked against an in-memory model of its bytes.

    python3 scripts/fsx.py FILE OPS SEED [MAX_SIZE=262144] [MODEL_OUT]

Exits 1 at the first difference, with the last operations. MODEL_OUT, when given, receives the
expected final bytes (for a check through another mount). Deterministic for a SEED.
"""
import mmap
import os
import random
import sys

path, nops, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
maxlen = int(sys.argv[4]) if len(sys.argv) > 4 else 256 * 1024
model_out = sys.argv[5] if len(sys.argv) > 5 else None
MAXOP = 64 * 1024
rng = random.Random(seed)
model = bytearray()
log = []


def fail(msg):
    print(f"fsx {path}: FAIL: {msg}")
    for line in log[-30:]:
        print("   ", line)
    sys.exit(1)


def check(off, data, what):
    want = bytes(model[off:off + len(data)])
    if data != want:
        i = next((i for i in range(min(len(data), len(want))) if data[i] != want[i]), None)
        if i is None:
            fail(f"{what} at {off:#x}: {len(data):#x} bytes, want {len(want):#x}")
        fail(f"{what}: byte {off + i:#x} is {data[i]:#x}, want {want[i]:#x} (size {len(model):#x})")


def some(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def grow(end):
    if end > len(model):
        model.extend(b"\0" * (end - len(model)))


fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
for n in range(1, nops + 1):
    op = rng.randrange(10)
    if op in (0, 1) and model:  # read
        off = rng.randrange(len(model))
        ln = min(rng.randrange(MAXOP + 1), len(model) - off)
        log.append(f"{n} read {off:#x}+{ln:#x}")
        check(off, os.pread(fd, ln, off), "read")
    elif op in (2, 3, 4):  # write, possibly past the end (a hole)
        off = rng.randrange(maxlen)
        ln = min(rng.randrange(1, MAXOP + 1), maxlen - off)
        data = some(ln)
        log.append(f"{n} write {off:#x}+{ln:#x} (size {len(model):#x})")
        if os.pwrite(fd, data, off) != ln:
            fail("short write")
        grow(off)
        model[off:off + ln] = data
    elif op == 5:  # truncate, up or down
        ln = rng.randrange(maxlen)
        log.append(f"{n} truncate {ln:#x} (from {len(model):#x})")
        os.ftruncate(fd, ln)
        grow(ln)
        del model[ln:]
    elif op == 6 and model:  # mapped read
        off = rng.randrange(len(model))
        ln = min(rng.randrange(1, MAXOP + 1), len(model) - off)
        pg = off - off % mmap.PAGESIZE
        log.append(f"{n} mapread {off:#x}+{ln:#x}")
        m = mmap.mmap(fd, off + ln - pg, mmap.MAP_SHARED, mmap.PROT_READ, offset=pg)
        data = m[off - pg:off - pg + ln]
        m.close()
        check(off, data, "mapread")
    elif op == 7:  # mapped write (the file is extended first, as mmap cannot)
        off = rng.randrange(maxlen)
        ln = min(rng.randrange(1, MAXOP + 1), maxlen - off)
        data = some(ln)
        log.append(f"{n} mapwrite {off:#x}+{ln:#x} (size {len(model):#x})")
        if off + ln > len(model):
            os.ftruncate(fd, off + ln)
            grow(off + ln)
        pg = off - off % mmap.PAGESIZE
        m = mmap.mmap(fd, off + ln - pg, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=pg)
        m[off - pg:off - pg + ln] = data
        m.flush()
        m.close()
        model[off:off + ln] = data
    elif op == 8:
        log.append(f"{n} fsync")
        os.fsync(fd)
    else:
        log.append(f"{n} close/open")
        os.close(fd)
        fd = os.open(path, os.O_RDWR)
    size = os.fstat(fd).st_size
    if size != len(model):
        fail(f"size {size:#x}, want {len(model):#x}")
os.close(fd)
with open(path, "rb") as f:
    check(0, f.read(), "read after close")
if model_out:
    with open(model_out, "wb") as f:
        f.write(model)
print(f"fsx {path}: {nops} operations, seed {seed}, final size {len(model)}: ok")
