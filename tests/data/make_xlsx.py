#!/usr/bin/env python3
"""Writes tests/data/contacts.xlsx, the spreadsheet of tests/api/xlsx.rs, with nothing but the
standard library: a minimal Office Open XML workbook whose first sheet holds a header row and
contacts with the kinds of cell a real export has (shared and inline strings, a phone stored as
a number, a date cell, a boolean), and a second sheet that must be ignored.

Run: python3 tests/data/make_xlsx.py
"""
import pathlib
import zipfile

HERE = pathlib.Path(__file__).parent

CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/worksheets/sheet2.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>
<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>
</Types>"""

ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""

WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="Contacts" sheetId="1" r:id="rId1"/><sheet name="Notes" sheetId="2" r:id="rId2"/></sheets>
</workbook>"""

WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet2.xml"/>
<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>
<Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
</Relationships>"""

# Style 1 formats its cell as a date (built-in number format 14, m/d/yyyy).
STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<fonts count="1"><font/></fonts><fills count="1"><fill/></fills><borders count="1"><border/></borders>
<cellStyleXfs count="1"><xf/></cellStyleXfs>
<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs>
</styleSheet>"""

STRINGS = ["Phone", "First Name", "Email", "Birthday", "VIP", "Amina", "amina@example.com", "Youssef"]
SHARED = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">%s</sst>'
    % (len(STRINGS), len(STRINGS), "".join("<si><t>%s</t></si>" % s for s in STRINGS))
)


def s(ref, index):
    return '<c r="%s" t="s"><v>%d</v></c>' % (ref, index)


def inline(ref, text):
    return '<c r="%s" t="inlineStr"><is><t>%s</t></is></c>' % (ref, text)


def num(ref, value, style=0):
    return '<c r="%s"%s><v>%s</v></c>' % (ref, ' s="1"' if style else "", value)


def boolean(ref, value):
    return '<c r="%s" t="b"><v>%d</v></c>' % (ref, value)


ROWS = [
    [s("A1", 0), s("B1", 1), s("C1", 2), s("D1", 3), s("E1", 4)],
    # A phone typed as a number, a date cell (1987-03-21 is serial 31857), a boolean.
    [num("A2", "212612345678"), s("B2", 5), s("C2", 6), num("D2", "31857", style=1), boolean("E2", 1)],
    # A phone as text, no email, a birthday as text, an inline string.
    [inline("A3", "+212 6 12 34 56 79"), s("B3", 7), "", inline("D3", "1990-12-01"), boolean("E3", 0)],
    # A bad phone: the row fails alone.
    [inline("A4", "12345"), inline("B4", "Broken")],
]
SHEET1 = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>%s</sheetData></worksheet>'
    % "".join('<row r="%d">%s</row>' % (i + 1, "".join(cells)) for i, cells in enumerate(ROWS))
)
SHEET2 = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    '<row r="1">%s</row><row r="2">%s</row></sheetData></worksheet>' % (inline("A1", "Phone"), inline("A2", "+212612345600"))
)

with zipfile.ZipFile(HERE / "contacts.xlsx", "w", zipfile.ZIP_DEFLATED) as z:
    # Fixed timestamps: the file is the same on every run.
    for name, body in [
        ("[Content_Types].xml", CONTENT_TYPES),
        ("_rels/.rels", ROOT_RELS),
        ("xl/workbook.xml", WORKBOOK),
        ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
        ("xl/styles.xml", STYLES),
        ("xl/sharedStrings.xml", SHARED),
        ("xl/worksheets/sheet1.xml", SHEET1),
        ("xl/worksheets/sheet2.xml", SHEET2),
    ]:
        info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, body)
print(HERE / "contacts.xlsx")
