#!/usr/bin/env python3
"""Image folders for benches/pack.sh, written with Python's standard library only.

  pack_folders.py mnist DIR TRAIN     the bundled MNIST sample as 28x28 grey PNGs in
                                      DIR/train/<digit>/ and DIR/test/<digit>/: TRAIN training
                                      images (the sample's 8,000 cycled, each cycle shifted by
                                      another 1-2 px offset) and the 2,000 held-out digits
  pack_folders.py synthetic DIR N SIDE   N RGB SIDExSIDE PNGs of 10 classes (noise with a
                                      coloured band whose row and colour give the class), 90 %
                                      in DIR/train/, 10 % in DIR/test/
"""
import gzip
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "data", "mnist-sample")


def png(width, height, channels, rows):
    """A PNG of 8-bit grey (1) or RGB (3) rows (bytes, one per row)."""

    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)

    color = {1: 0, 3: 2}[channels]
    raw = b"".join(b"\x00" + r for r in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


def idx(name):
    with gzip.open(os.path.join(SAMPLE, name)) as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    dims = struct.unpack(">" + "I" * (magic & 0xFF), data[4 : 4 + 4 * (magic & 0xFF)])
    return dims, data[4 + 4 * len(dims) :]


def shifted(img, dx, dy):
    rows = []
    for y in range(28):
        sy = y - dy
        if not 0 <= sy < 28:
            rows.append(bytes(28))
            continue
        src = img[sy * 28 : sy * 28 + 28]
        if dx >= 0:
            rows.append(bytes(dx) + src[: 28 - dx])
        else:
            rows.append(src[-dx:] + bytes(-dx))
    return rows


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def mnist(out, train):
    shifts = [(0, 0)] + [(x, y) for y in (-1, 0, 1, -2, 2) for x in (-1, 0, 1, -2, 2) if (x, y) != (0, 0)]
    for split, count in (("train", train), ("test", None)):
        prefix = "train" if split == "train" else "test"
        (n, _, _), pixels = idx(f"{prefix}-images-idx3-ubyte.gz")
        _, labels = idx(f"{prefix}-labels-idx1-ubyte.gz")
        count = n if count is None else count
        for i in range(count):
            k = i % n
            dx, dy = shifts[(i // n) % len(shifts)]
            img = pixels[k * 784 : (k + 1) * 784]
            write(
                os.path.join(out, split, str(labels[k]), f"{i:06d}.png"),
                png(28, 28, 1, shifted(img, dx, dy)),
            )


def synthetic(out, n, side):
    colors = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
              (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 190)]
    band = max(1, side // 10)
    for i in range(n):
        k = i % 10
        split = "test" if (i // 10) % 10 == 9 else "train"
        noise = bytearray(os.urandom(side * side * 3))
        rows = []
        top = k * band
        r, g, b = colors[k]
        stripe = bytes((r, g, b)) * side
        for y in range(side):
            row = noise[y * side * 3 : (y + 1) * side * 3]
            rows.append(stripe if top <= y < top + band else bytes(v >> 2 for v in row))
        write(os.path.join(out, split, f"c{k}", f"{i:07d}.png"), png(side, side, 3, rows))


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    if kind == "mnist" and len(sys.argv) == 4:
        mnist(sys.argv[2], int(sys.argv[3]))
    elif kind == "synthetic" and len(sys.argv) == 5:
        synthetic(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
