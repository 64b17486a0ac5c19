#!/usr/bin/env python3
"""Writes a bundle_tar regression input to the path given: a GNU long-name header
(`././@LongLink`, type L) that announces a 3 GiB name, followed by 3 GiB of zeros.

The file is sparse (a few KiB on disk, nothing in RAM on tmpfs), so it cannot be committed
as is and libFuzzer could not make it (its inputs are kilobytes): scripts/fuzz.sh runs this
script and replays the output. A tar reader that buffers the long name whole runs out of
memory on it.
"""
import sys
import tarfile

SIZE = 3 << 30
header = tarfile.TarInfo("././@LongLink")
header.type = tarfile.GNUTYPE_LONGNAME
header.size = SIZE
block = header.tobuf(format=tarfile.GNU_FORMAT)
with open(sys.argv[1], "wb") as out:
    out.write(block)
    out.truncate(len(block) + SIZE + 1024)
