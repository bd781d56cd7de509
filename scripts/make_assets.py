"""Builds the embedded data sets from the pinned upstream packages (standard library only).

Subset rule (Fashion-MNIST): walk the label file from the start and keep a sample while its class
has fewer than N/10 kept; write the kept samples in file order as IDX with a fresh count, gzipped
with a zero timestamp so that the bytes are reproducible.

CIFAR fixtures: decode foolbox's lossless PNGs of the first 20 test images, reorder the interleaved
RGB into three 1024-byte planes and prefix the label byte (CIFAR-10) or coarse and fine labels
(CIFAR-100), exactly the layout of the official binary files.
"""

import argparse
import gzip
import hashlib
import io
import pathlib
import re
import struct
import zipfile
import zlib

# The standard CIFAR-100 fine -> coarse (superclass) mapping.
CIFAR100_COARSE = [
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13, 15,
    3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4,
    2, 0, 17, 4, 18, 17, 10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
]


def read_idx(path):
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic, count = struct.unpack(">II", raw[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", raw[8:16])
        size = rows * cols
        return [raw[16 + i * size : 16 + (i + 1) * size] for i in range(count)], (rows, cols)
    if magic == 2049:
        return list(raw[8 : 8 + count]), None
    raise SystemExit(f"{path}: unexpected IDX magic {magic}")


def write_gz(path, payload):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    path.write_bytes(buf.getvalue())


def subset(fashion_dir, split, n, out_dir):
    images, (rows, cols) = read_idx(fashion_dir / f"{split}-images-idx3-ubyte.gz")
    labels, _ = read_idx(fashion_dir / f"{split}-labels-idx1-ubyte.gz")
    per_class, kept, counts = n // 10, [], [0] * 10
    for i, label in enumerate(labels):
        if counts[label] < per_class:
            counts[label] += 1
            kept.append(i)
            if len(kept) == n:
                break
    write_gz(
        out_dir / f"{split}-images-idx3-ubyte.gz",
        struct.pack(">IIII", 2051, n, rows, cols) + b"".join(images[i] for i in kept),
    )
    write_gz(out_dir / f"{split}-labels-idx1-ubyte.gz",
             struct.pack(">II", 2049, n) + bytes(labels[i] for i in kept))


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png_rgb8(data):
    """Decodes an 8-bit RGB, non-interlaced PNG into interleaved RGB bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert (depth, colour, interlace) == (8, 2, 0), f"unsupported PNG {header}"
    raw, stride, bpp = zlib.decompress(idat), width * 3, 3
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            line[x] = (line[x] + (0, a, b, (a + b) // 2, paeth(a, b, c))[kind]) & 0xFF
        out += line
        prev = line
    return bytes(out)


def cifar_fixture(wheel, name, out_path):
    with zipfile.ZipFile(wheel) as z:
        found = {}
        for member in z.namelist():
            m = re.fullmatch(rf"foolbox/data/{name}_(\d+)_(\d+)\.png", member)
            if m:
                found[int(m.group(1))] = (int(m.group(2)), z.read(member))
    records = b""
    for index in range(20):
        label, png = found[index]
        rgb = decode_png_rgb8(png)
        planes = b"".join(rgb[c::3] for c in range(3))
        prefix = bytes([label]) if name == "cifar10" else bytes([CIFAR100_COARSE[label], label])
        records += prefix + planes
    out_path.write_bytes(records)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fashion-dir", type=pathlib.Path, required=True)
    ap.add_argument("--foolbox-wheel", type=pathlib.Path, required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    args = ap.parse_args()
    fashion_out = args.out / "fashion-mnist-10k"
    cifar_out = args.out / "cifar"
    fashion_out.mkdir(parents=True, exist_ok=True)
    cifar_out.mkdir(parents=True, exist_ok=True)
    subset(args.fashion_dir, "train", 10_000, fashion_out)
    subset(args.fashion_dir, "t10k", 2_000, fashion_out)
    cifar_fixture(args.foolbox_wheel, "cifar10", cifar_out / "cifar10_test20.bin")
    cifar_fixture(args.foolbox_wheel, "cifar100", cifar_out / "cifar100_test20.bin")
    for path in sorted(list(fashion_out.glob("*.gz")) + list(cifar_out.glob("*.bin"))):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(args.out))


if __name__ == "__main__":
    main()
