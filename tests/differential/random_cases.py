#!/usr/bin/env python3
"""Writes reproducible random SSE inputs (NAME.bin) for the differential check.

usage: random_cases.py DIR [COUNT] [SEED]

The inputs are built from the pieces that matter to the grammar (field names, colons, spaces,
every line ending, BOMs, NUL, invalid and multi-byte UTF-8, digits) plus arbitrary bytes, so
the reference parsers and our decoder disagree wherever one of them bends a rule.
"""
import os
import random
import sys

PIECES = [
    b"data", b"data: ", b"data:", b"event: ", b"event:", b"id: ", b"id:", b"retry: ", b"retry:",
    b":", b" ", b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", b"\xef\xbb\xbf", b"\x00", b"\xff",
    b"\xe2\x82", "é日🎉".encode(), b"[DONE]", b'{"a":1}',
]


def case(rng: random.Random) -> bytes:
    out = []
    for _ in range(rng.randint(0, 60)):
        r = rng.random()
        if r < 0.75:
            out.append(rng.choice(PIECES))
        elif r < 0.85:
            out.append(str(rng.randint(0, 99999)).encode())
        elif r < 0.95:
            out.append(bytes(rng.choice(b"abcxyz{}\"") for _ in range(rng.randint(1, 6))))
        else:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 3))))
    return b"".join(out)


def main() -> None:
    dest = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rng = random.Random(seed)
    os.makedirs(dest, exist_ok=True)
    for i in range(count):
        with open(os.path.join(dest, f"random_{seed}_{i:04d}.bin"), "wb") as f:
            f.write(case(rng))
    print(f"wrote {count} random cases (seed {seed}) to {dest}", file=sys.stderr)


if __name__ == "__main__":
    main()
