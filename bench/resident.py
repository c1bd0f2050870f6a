#!/usr/bin/env python3
"""resident.py - how much of each ELF section of a running binary is resident.

Reads /proc/PID/pagemap (root) for the pages of every allocated section of
BINARY, as mapped in process PID, and prints per section its size, the
resident part, and in how many of its 64 KiB windows any page is resident
(the kernel maps file pages around a fault in such windows). The binary must
be linked at fixed addresses, as Go links on linux/amd64 by default (not PIE).

Usage: sudo bench/resident.py PID BINARY
"""
import re
import signal
import struct
import subprocess
import sys

PAGE = 4096
WINDOW = 64 * 1024


def sections(binary):
    try:
        out = subprocess.check_output(["readelf", "-SW", binary], text=True, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        sys.exit(f"resident: readelf cannot read {binary}; name the process's binary (readelf is in binutils)")
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m and int(m.group(2), 16) and int(m.group(3), 16):
            yield m.group(1), int(m.group(2), 16), int(m.group(3), 16)


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under head
    if len(sys.argv) != 3:
        sys.exit("usage: resident.py PID BINARY")
    pid, binary = sys.argv[1], sys.argv[2]
    secs = list(sections(binary))
    try:
        pm = open(f"/proc/{pid}/pagemap", "rb")
    except OSError as e:
        sys.exit(f"resident: cannot read the page map of process {pid} ({e.strerror}); name a running process, as root")
    with pm:
        def present(addr):
            pm.seek(addr // PAGE * 8)
            return struct.unpack("<Q", pm.read(8))[0] >> 63

        print(f"{'section':16} {'MiB':>7} {'resident':>9} {'64K windows':>16}")
        for name, lo, size in secs:
            hi = lo + size
            pages = range(lo - lo % PAGE, hi, PAGE)
            res = sum(present(a) for a in pages)
            windows = touched = 0
            for w in range(lo - lo % WINDOW, hi, WINDOW):
                windows += 1
                touched += any(present(a) for a in range(max(w, lo - lo % PAGE), min(w + WINDOW, hi), PAGE))
            print(f"{name:16} {size / 2**20:7.1f} {res * PAGE / 2**20:9.1f} {touched:>7} of {windows:<6}")


if __name__ == "__main__":
    main()
