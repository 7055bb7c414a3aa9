"""Write the viewer's icon, nx/web/static/favicon.ico: a dark tile holding three rows of
tokens shaded by activation, as the neuron page draws them (a 32x32 PNG inside an ICO).

    python scripts/make_favicon.py
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "nx" / "web" / "static" / "favicon.ico"
SIZE = 32
BACKGROUND = (13, 17, 23)   # the header's colour
GREEN = (22, 128, 60)       # nx.web.tokens.GREEN: the strongest activation
# Activation of each token (0-1), three rows of four: one neuron firing on a few tokens.
ROWS = ((0.1, 0.3, 1.0, 0.2), (0.0, 0.6, 0.15, 0.05), (0.35, 0.0, 0.85, 0.4))


def pixel(x: int, y: int) -> tuple[int, int, int, int]:
    corner = 5  # rounded tile: transparent outside a circle in each corner
    cx, cy = min(max(x, corner), SIZE - 1 - corner), min(max(y, corner), SIZE - 1 - corner)
    if (x - cx) ** 2 + (y - cy) ** 2 > corner ** 2:
        return (0, 0, 0, 0)
    row, col = (y - 5) // 8, (x - 3) // 7
    inside = 0 <= row < 3 and 0 <= col < 4 and (y - 5) % 8 < 6 and (x - 3) % 7 < 6
    if not inside:
        return (*BACKGROUND, 255)
    t = ROWS[row][col]
    return (*(round(255 + (g - 255) * t) for g in GREEN), 255)


def png() -> bytes:
    raw = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(SIZE)) for y in range(SIZE))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def main() -> None:
    image = png()
    # ICO: header, one directory entry, then the PNG (allowed inside ICO since Windows Vista).
    icon = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", SIZE, SIZE, 0, 0, 1, 32, len(image), 22) + image
    TARGET.write_bytes(icon)
    print(f"wrote {TARGET} ({len(icon)} bytes)")


if __name__ == "__main__":
    main()
