#!/usr/bin/env python3
"""Archives crafted the way an attacker would, for the fuzz corpus and the metadata-bomb bench.

  scripts/crafted-archives.py corpus DIR      the small crafted archives (fuzz corpus)
  scripts/crafted-archives.py bomb FILE N     a zstd tar of N PAX headers of 1 MiB each for one
                                              entry (a few hundred KiB for thousands of MiB)
  scripts/crafted-archives.py spread FILE N   a zstd tar of N entries with one 1 MiB PAX record
                                              each (within the limits: accepted, memory bounded)
"""

import io
import subprocess
import sys
import tarfile
from pathlib import Path


def info(name, kind=tarfile.REGTYPE, mode=0o644, data=b"", **extra):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = 1_700_000_000
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in extra.items():
        setattr(ti, key, value)
    return ti, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def write(path, entries, fmt=tarfile.GNU_FORMAT):
    """Writes `entries` as a tar to a file path or a file object."""
    target = {"fileobj": path} if isinstance(path, io.IOBase) else {"name": path}
    with tarfile.open(mode="w", format=fmt, **target) as tar:
        for ti, data in entries:
            tar.addfile(ti, data)


def corpus(out):
    out.mkdir(parents=True, exist_ok=True)
    root = info("./", tarfile.DIRTYPE, 0o755)
    write(out / "hardlink-to-symlink.tar", [
        root,
        info("./sym", tarfile.SYMTYPE, 0o777, linkname="/etc"),
        info("./hard", tarfile.LNKTYPE, 0o777, linkname="./sym"),
        info("./hard/escaped", data=b"through the hard link"),
        info("./sym/escaped", data=b"through the symlink"),
    ])
    sparse, _ = info("./real", data=b"content")
    sparse.pax_headers = {"GNU.sparse.name": "../../etc/renamed", "GNU.sparse.major": "1"}
    write(out / "gnu-sparse-name.tar", [root, (sparse, io.BytesIO(b"content"))],
          tarfile.PAX_FORMAT)
    # A ustar name long enough to be split into the prefix field.
    long = "./" + "d" * 120 + "/file"
    write(out / "ustar-prefix.tar", [root, info(long, data=b"x")], tarfile.USTAR_FORMAT)
    write(out / "devices-setuid.tar", [
        root,
        info("./null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3),
        info("./sda", tarfile.BLKTYPE, 0o660, devmajor=8, devminor=0),
        info("./suid", mode=0o4755, data=b"#!/bin/sh\n"),
        info("./suid-link", tarfile.LNKTYPE, linkname="./suid"),
        info("./escape", tarfile.LNKTYPE, linkname="../../etc/shadow"),
        info("../outside", data=b"x"),
    ])
    bomb(out / "metadata-bomb.tar.zst", 12, record=64 << 10)


def bomb(path, count, record=(1 << 20) - 40, spread=False):
    """`count` PAX headers whose one `comment` record is `record` bytes, then one file; with
    `spread`, each PAX header has a file of its own."""
    value = b"a" * record
    body = b" comment=" + value + b"\n"
    length = len(body) + 1
    while length != len(body) + len(str(length)):
        length = len(body) + len(str(length))
    data = str(length).encode() + body
    header = tarfile.TarInfo("PaxHeaders/bomb")
    header.type = tarfile.XHDTYPE
    header.size = len(data)
    block = header.tobuf(tarfile.USTAR_FORMAT)
    pad = b"\0" * (-len(data) % 512)
    def file(name, kind=tarfile.REGTYPE):
        ti, _ = info(name, kind, 0o755)
        return ti.tobuf(tarfile.GNU_FORMAT)

    with open(path, "wb") as out:
        zstd = subprocess.Popen(["zstd", "-q", "-19", "-c"], stdin=subprocess.PIPE, stdout=out)
        zstd.stdin.write(file("./", tarfile.DIRTYPE))
        for i in range(count):
            zstd.stdin.write(block + data + pad)
            if spread:
                zstd.stdin.write(file(f"./f{i}"))
        zstd.stdin.write(file("./victim") + b"\0" * 1024)
        zstd.stdin.close()
        if zstd.wait() != 0:
            sys.exit("zstd failed")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "corpus":
        corpus(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] in ("bomb", "spread"):
        bomb(Path(sys.argv[2]), int(sys.argv[3]), spread=sys.argv[1] == "spread")
    else:
        sys.exit(__doc__)
