#!/usr/bin/env python3
"""Writes the vCard files of bench/RESULTS.md's table into DIR (default bench/data):
cards-100k.vcf (100,000 cards as iOS writes them), photo-300mb.vcf (a 300 MB PHOTO line between
two cards), fn-300mb.vcf (a 300 MB folded FN, then a card), tels-3m.vcf (3,000,000 TEL lines in
one card, then a card). Then: bench/upload_memory.sh DIR/NAME.vcf text/vcard"""
import os
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "data")
os.makedirs(out, exist_ok=True)
CARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:C\r\nTEL;TYPE=CELL:+212612000003\r\nEND:VCARD\r\n"

with open(os.path.join(out, "cards-100k.vcf"), "w") as f:
    for i in range(100_000):
        f.write(
            "BEGIN:VCARD\r\nVERSION:3.0\r\n"
            f"N:Family{i};Given{i};;;\r\nFN:Given{i} Family{i}\r\n"
            f"TEL;TYPE=HOME:+2125220{i:05d}\r\nTEL;TYPE=CELL:+2126120{i:05d}\r\n"
            f"EMAIL;TYPE=INTERNET:p{i}@example.com\r\n"
            f"ADR;TYPE=HOME:;;{i} Rue Atlas;Rabat;;10000;Morocco\r\n"
            f"BDAY:1990-01-{1 + i % 28:02d}\r\nCATEGORIES:friends,vip\r\nEND:VCARD\r\n"
        )
with open(os.path.join(out, "photo-300mb.vcf"), "w") as f:
    f.write("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nTEL;TYPE=CELL:+212612000001\r\nEND:VCARD\r\n")
    f.write("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:B\r\nTEL;TYPE=CELL:+212612000002\r\nPHOTO;ENCODING=b;TYPE=JPEG:")
    chunk = "QUJD" * 262_144
    for _ in range(300):
        f.write(chunk)
    f.write("\r\nEND:VCARD\r\n" + CARD)
with open(os.path.join(out, "fn-300mb.vcf"), "w") as f:
    f.write("BEGIN:VCARD\r\nVERSION:3.0\r\nTEL;TYPE=CELL:+212612000001\r\nFN:")
    for _ in range(300 * 1024 * 1024 // 77):
        f.write("x" * 74 + "\r\n ")
    f.write("end\r\nEND:VCARD\r\n" + CARD)
with open(os.path.join(out, "tels-3m.vcf"), "w") as f:
    f.write("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Many\r\n")
    for i in range(3_000_000):
        f.write(f"TEL:+2126{i:08d}\r\n")
    f.write("END:VCARD\r\n" + CARD)
