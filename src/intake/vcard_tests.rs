//! Tables of cards as phones and address books write them: each version, the choice among
//! several values, escapes, dates, and the bounds on what a card may hold.

use super::*;
use crate::intake::records::MAX_RECORD_BYTES;

/// Content lines joined by CRLF, as exporters write them.
fn crlf(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

/// Every record of `input`, read through a tiny buffer so lines cross chunk boundaries.
fn records(input: &str, max: usize) -> Result<Vec<Vec<String>>, CardsError> {
    let mut cards = Cards::new(io::BufReader::with_capacity(5, input.as_bytes()), max);
    let mut record = csv::ByteRecord::new();
    let mut out = Vec::new();
    while cards.read_record(&mut record)? {
        out.push(
            record
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect(),
        );
    }
    Ok(out)
}

/// The non-empty cells of a record, by column.
fn cells(record: &[String]) -> Vec<(&'static str, &str)> {
    assert_eq!(record.len(), COLUMNS.len(), "{record:?}");
    COLUMNS
        .iter()
        .zip(record)
        .filter(|(_, cell)| !cell.is_empty())
        .map(|(column, cell)| (*column, cell.as_str()))
        .collect()
}

/// The one card of `input`, as its non-empty cells.
fn card(input: &str) -> Vec<(&'static str, String)> {
    let records = records(input, MAX_RECORD_BYTES).unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    cells(&records[0])
        .into_iter()
        .map(|(column, cell)| (column, cell.to_owned()))
        .collect()
}

/// The cell of `column` in the one card of `input`.
fn cell(input: &str, column: &str) -> String {
    card(input)
        .into_iter()
        .find(|(c, _)| *c == column)
        .map(|(_, cell)| cell)
        .unwrap_or_default()
}

fn overlong() -> Vec<String> {
    vec![String::from_utf8_lossy(OVERLONG_RECORD).into_owned()]
}

#[test]
fn a_2_1_card_decodes_quoted_printable_in_its_charset_and_soft_line_breaks() {
    let input = crlf(&[
        "BEGIN:VCARD",
        "VERSION:2.1",
        "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen;;;",
        "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:J=C3=BCrgen =",
        "M=C3=BCller",
        "TEL;HOME;VOICE:+49 30 1234567",
        "TEL;CELL:+49 170 1234567",
        "EMAIL;INTERNET:juergen@example.de",
        "ADR;HOME;CHARSET=ISO-8859-1;QUOTED-PRINTABLE:;;Hauptstra=DFe 5;M=FCnchen;Bayern;80331;Deutschland",
        "NOTE;ENCODING=QUOTED-PRINTABLE:first line=0D=0A=",
        "TEL;CELL:+1 555 0100 is inside the note=",
        "END:VCARD is inside the note too",
        "TITLE:Ingenieur\\; Leiter",
        "BDAY:19900517",
        "END:VCARD",
    ]);
    assert_eq!(
        card(&input),
        [
            ("fullName", "Jürgen Müller".into()),
            ("lastName", "Müller".into()),
            ("firstName", "Jürgen".into()),
            ("phone", "+49 170 1234567".into()),
            ("email", "juergen@example.de".into()),
            ("occupation", "Ingenieur; Leiter".into()),
            ("address", "Hauptstraße 5".into()),
            ("city", "München".into()),
            ("state", "Bayern".into()),
            ("zip", "80331".into()),
            ("birthday", "1990-05-17".into()),
        ]
    );
}

#[test]
fn a_3_0_card_as_apple_exports_it_reads_groups_and_type_lists() {
    let input = crlf(&[
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:-//Apple Inc.//iPhone OS 17.4//EN",
        "N:Appleseed;John;;;",
        "FN:John Appleseed",
        "ORG:Apple Inc.;",
        "TITLE:Engineer\\, Platform",
        "EMAIL;type=INTERNET;type=WORK:john.work@example.com",
        "item1.EMAIL;type=INTERNET;type=pref:john@example.com",
        "item1.X-ABLabel:_$!<Other>!$_",
        "TEL;type=MAIN;type=VOICE;type=pref:+1 408 555 0100",
        "item2.TEL;type=IPHONE;type=CELL;type=VOICE:+1 408 555 0101",
        "item3.ADR;type=HOME;type=pref:;Building 2;1 Infinite Loop;Cupertino;CA;95014;United States",
        "item3.X-ABADR:us",
        "BDAY;X-APPLE-OMIT-YEAR=1604:1604-05-17",
        "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdC",
        " IFhZWiAH4AABAAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAA",
        "END:VCARD",
    ]);
    assert_eq!(
        card(&input),
        [
            ("fullName", "John Appleseed".into()),
            ("lastName", "Appleseed".into()),
            ("firstName", "John".into()),
            ("phone", "+1 408 555 0101".into()),
            ("email", "john@example.com".into()),
            ("occupation", "Engineer, Platform".into()),
            ("address", "1 Infinite Loop, Building 2".into()),
            ("city", "Cupertino".into()),
            ("state", "CA".into()),
            ("zip", "95014".into()),
            ("birthday", "--05-17".into()),
        ]
    );
}

#[test]
fn a_3_0_card_as_google_exports_it_keeps_its_tags() {
    let input = crlf(&[
        "BEGIN:VCARD",
        "VERSION:3.0",
        "FN:Jane Doe",
        "N:Doe;Jane;;;",
        "EMAIL;TYPE=INTERNET;TYPE=HOME:jane@example.com",
        "TEL;TYPE=CELL:+33 6 12 34 56 78",
        "ADR;TYPE=HOME:;;12 rue de la Paix;Paris;;75002;France",
        "BDAY:1985-02-03",
        "CATEGORIES:myContacts,starred",
        "item1.URL:http\\://example.com",
        "item1.X-ABLabel:",
        "NOTE:Met at the conference\\nin Lyon",
        "END:VCARD",
    ]);
    assert_eq!(
        card(&input),
        [
            ("fullName", "Jane Doe".into()),
            ("lastName", "Doe".into()),
            ("firstName", "Jane".into()),
            ("phone", "+33 6 12 34 56 78".into()),
            ("email", "jane@example.com".into()),
            ("address", "12 rue de la Paix".into()),
            ("city", "Paris".into()),
            ("zip", "75002".into()),
            ("birthday", "1985-02-03".into()),
            ("tags", "myContacts,starred".into()),
        ]
    );
}

#[test]
fn a_4_0_card_reads_tel_uris_and_folded_lines() {
    let input = crlf(&[
        "BEGIN:VCARD",
        "VERSION:4.0",
        "FN:Simon Perr",
        " eault",
        "N:Perreault;Simon;;;ing. jr,M.Sc.",
        "BDAY:--0203",
        "GENDER:M",
        "LANG;PREF=1:fr",
        "TEL;VALUE=uri;TYPE=\"work,voice\";PREF=1:tel:+1-418-656-9254;ext=102",
        "TEL;VALUE=uri;TYPE=\"work,cell,voice,video,text\":tel:+1-418-262-6501",
        "EM",
        "\tAIL;TYPE=work:simon.perreault@",
        " viagenie.ca",
        "ADR;TYPE=work;LABEL=\"Suite D2-630\\n2875 Laurier\\nQuebec, QC G1V 2M2\":;Suite D2-630;2875 Laurier;",
        " Quebec;QC;G1V 2M2;Canada",
        "UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1",
        "END:VCARD",
    ]);
    assert_eq!(
        card(&input),
        [
            ("fullName", "Simon Perreault".into()),
            ("lastName", "Perreault".into()),
            ("firstName", "Simon".into()),
            ("phone", "+1-418-262-6501".into()),
            ("email", "simon.perreault@viagenie.ca".into()),
            ("address", "2875 Laurier, Suite D2-630".into()),
            ("city", "Quebec".into()),
            ("state", "QC".into()),
            ("zip", "G1V 2M2".into()),
            ("birthday", "--02-03".into()),
            (
                "uid",
                "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1".into()
            ),
        ]
    );
    // A tel: URI's number, whatever its parameters.
    let first = "BEGIN:VCARD\nVERSION:4.0\nTEL;VALUE=uri:tel:+1-555-555-0100;ext=7\nEND:VCARD\n";
    assert_eq!(cell(first, "phone"), "+1-555-555-0100");
}

#[test]
fn several_cards_become_records_in_order_with_empty_cells_for_what_they_lack() {
    // LF line ends, a lone CR, and CRLF in one file.
    let input = "BEGIN:VCARD\nVERSION:3.0\nFN:One\nEND:VCARD\n\
                 BEGIN:VCARD\rVERSION:3.0\rEMAIL:two@example.com\rEND:VCARD\r\
                 BEGIN:VCARD\r\nEND:VCARD\r\n";
    let records = records(input, MAX_RECORD_BYTES).unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(cells(&records[0]), [("fullName", "One")]);
    assert_eq!(cells(&records[1]), [("email", "two@example.com")]);
    assert_eq!(records[2], vec![String::new(); COLUMNS.len()]);
}

#[test]
fn a_card_without_end_ends_at_the_next_begin_or_the_end_of_the_file() {
    let input = "BEGIN:VCARD\nFN:Open\nBEGIN:VCARD\nFN:Next\nEND:VCARD\nBEGIN:VCARD\nFN:Last";
    let records = records(input, MAX_RECORD_BYTES).unwrap();
    let names: Vec<_> = records.iter().map(|r| cells(r)).collect();
    assert_eq!(
        names,
        [
            [("fullName", "Open")],
            [("fullName", "Next")],
            [("fullName", "Last")]
        ]
    );
}

#[test]
fn the_first_cell_phone_wins_over_earlier_phones() {
    let cases = [
        (
            &["TEL;TYPE=HOME:1", "TEL;TYPE=CELL:2", "TEL;TYPE=CELL:3"][..],
            "2",
        ),
        (&["TEL;TYPE=work:1", "TEL;TYPE=cell,voice:2"], "2"),
        (&["TEL;TYPE=work:1", "TEL;TYPE=\"cell\":2"], "2"),
        (&["TEL;HOME:1", "TEL;CELL:2"], "2"),
        (&["TEL;type=VOICE;type=CELL:2", "TEL:1"], "2"),
        (&["TEL;TYPE=HOME:1", "TEL;TYPE=WORK:2"], "1"),
        (&["TEL;TYPE=CELL:", "TEL:1"], "1"),
        (&["item1.TEL:1", "item2.TEL;TYPE=CELL:2"], "2"),
    ];
    for (lines, phone) in cases {
        let input = format!("BEGIN:VCARD\n{}\nEND:VCARD\n", lines.join("\n"));
        assert_eq!(cell(&input, "phone"), phone, "{lines:?}");
    }
}

#[test]
fn the_preferred_email_and_address_win_else_the_first() {
    let cases = [
        (
            &["EMAIL:a@x", "EMAIL;TYPE=INTERNET,PREF:b@x"][..],
            "email",
            "b@x",
        ),
        (&["EMAIL:a@x", "EMAIL;PREF=1:b@x"], "email", "b@x"),
        (&["EMAIL:a@x", "EMAIL;PREF;INTERNET:b@x"], "email", "b@x"),
        (&["EMAIL:a@x", "EMAIL;PREF=2:b@x"], "email", "a@x"),
        (
            &["ADR:;;1 A St;X;;;", "ADR;TYPE=pref:;;2 B St;Y;;;"],
            "address",
            "2 B St",
        ),
        (
            &["ADR;TYPE=WORK:;;1 A St;X;;;", "ADR;TYPE=HOME:;;2 B St;Y;;;"],
            "city",
            "X",
        ),
    ];
    for (lines, column, expected) in cases {
        let input = format!("BEGIN:VCARD\n{}\nEND:VCARD\n", lines.join("\n"));
        assert_eq!(cell(&input, column), expected, "{lines:?}");
    }
}

#[test]
fn escapes_are_read_as_the_card_version_writes_them() {
    let cases = [
        ("3.0", "FN:Smith\\, John", "fullName", "Smith, John"),
        ("3.0", "FN:a\\\\b", "fullName", "a\\b"),
        (
            "4.0",
            "TITLE:Chief\\nExecutive",
            "occupation",
            "Chief\nExecutive",
        ),
        (
            "4.0",
            "TITLE:Chief\\NExecutive",
            "occupation",
            "Chief\nExecutive",
        ),
        ("3.0", "N:O\\;Brien;Pat", "lastName", "O;Brien"),
        ("3.0", "N:O\\;Brien;Pat", "firstName", "Pat"),
        (
            "3.0",
            "ADR:;;1 Main St\\, Apt 2;Town;;;",
            "address",
            "1 Main St, Apt 2",
        ),
        ("4.0", "FN:back\\slash", "fullName", "back\\slash"),
        ("2.1", "N:O\\;Brien;Pat", "lastName", "O;Brien"),
        ("2.1", "FN:Smith\\, John", "fullName", "Smith\\, John"),
    ];
    for (version, line, column, expected) in cases {
        // VERSION after the property: escapes are read once the card is whole.
        let input = format!("BEGIN:VCARD\n{line}\nVERSION:{version}\nEND:VCARD\n");
        assert_eq!(cell(&input, column), expected, "{version} {line}");
    }
}

#[test]
fn birthdays_become_dates_or_are_passed_on_as_written() {
    let cases = [
        ("1990-05-17", None, "1990-05-17"),
        ("19900517", None, "1990-05-17"),
        ("1990-05-17T00:00:00Z", None, "1990-05-17"),
        ("19900517T000000", None, "1990-05-17"),
        ("--0517", None, "--05-17"),
        ("--05-17", None, "--05-17"),
        ("1604-05-17", Some("1604"), "--05-17"),
        ("1990-05-17", Some("1604"), "1990-05-17"),
        (" 1990-05-17 ", None, "1990-05-17"),
        ("17/05/1990", None, "17/05/1990"),
        ("1990-05", None, "1990-05"),
        ("T102200Z", None, "T102200Z"),
        ("circa 1800", None, "circa 1800"),
        ("1990-AB-17", None, "1990-AB-17"),
    ];
    for (value, omit_year, expected) in cases {
        let normal = birthday(value.as_bytes(), omit_year.map(str::as_bytes));
        assert_eq!(String::from_utf8_lossy(&normal), expected, "{value}");
    }
}

#[test]
fn categories_become_one_cell_of_comma_separated_tags() {
    let cases = [
        (&["CATEGORIES:Friends,Work"][..], "Friends,Work"),
        (&["CATEGORIES: Friends , ,Work,"], "Friends,Work"),
        (&["CATEGORIES:Friends", "CATEGORIES:Work"], "Friends,Work"),
        (
            &["CATEGORIES:Smith\\, Jones,Clients"],
            "Smith  Jones,Clients",
        ),
        (&["CATEGORIES:a\\nb"], "a b"),
        (&["CATEGORIES:,"], ""),
    ];
    for (lines, tags) in cases {
        let input = format!(
            "BEGIN:VCARD\nVERSION:3.0\n{}\nEND:VCARD\n",
            lines.join("\n")
        );
        assert_eq!(cell(&input, "tags"), tags, "{lines:?}");
    }
}

/// What a reader holds besides its input's buffer.
fn held<R>(cards: &Cards<R>) -> usize {
    cards.name.capacity() + cards.params.capacity() + cards.value.capacity()
}

#[test]
fn a_5_mb_photo_streams_past_and_the_next_card_is_read() {
    let photo = "A".repeat(5 * 1024 * 1024);
    let input = format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:With Photo\r\nPHOTO;ENCODING=b;TYPE=JPEG:{photo}\r\n \
         {photo}\r\nTEL:+1 555 0100\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:Next\r\nEND:VCARD\r\n"
    );
    let reader = io::BufReader::with_capacity(8 * 1024, input.as_bytes());
    let mut cards = Cards::new(reader, MAX_RECORD_BYTES);
    let mut record = csv::ByteRecord::new();
    assert!(cards.read_record(&mut record).unwrap());
    assert_eq!(&record[0], b"With Photo");
    assert_eq!(&record[3], b"+1 555 0100");
    assert!(held(&cards) < 4096, "held {} bytes", held(&cards));
    assert!(cards.read_record(&mut record).unwrap());
    assert_eq!(&record[0], b"Next");
    assert!(!cards.read_record(&mut record).unwrap());
}

#[test]
fn a_2_1_base64_photo_over_several_lines_is_skipped() {
    let input = crlf(&[
        "BEGIN:VCARD",
        "VERSION:2.1",
        "FN:Old Phone",
        "PHOTO;TYPE=JPEG;ENCODING=BASE64:",
        "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYICAoJ",
        "CQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8QEBD=",
        "",
        "TEL;CELL:+44 7700 900123",
        "END:VCARD",
    ]);
    assert_eq!(
        card(&input),
        [
            ("fullName", "Old Phone".into()),
            ("phone", "+44 7700 900123".into())
        ]
    );
}

#[test]
fn an_overlong_card_becomes_the_overlong_record_and_reading_goes_on() {
    let many_phones = "TEL:+1 555 0100\n".repeat(20);
    let long_qp = format!("FN;ENCODING=QUOTED-PRINTABLE:{}\n", "=41".repeat(101));
    let long_note = format!("NOTE:{}\n", "x".repeat(1000));
    let cases = [
        (format!("FN:{}\n", "x".repeat(200)), true),
        (
            format!("FN:{}\n \n {}\n", "x".repeat(60), "y".repeat(60)),
            true,
        ),
        (many_phones, true),
        (long_qp, true),
        // Short enough as written, but 101 bytes once decoded.
        (
            format!("FN;QUOTED-PRINTABLE:{}AAAAAA\n", "=41".repeat(95)),
            true,
        ),
        // 120 bytes as written, but 40 once decoded.
        (
            format!("FN;ENCODING=QUOTED-PRINTABLE:{}\n", "=41".repeat(40)),
            false,
        ),
        (long_note, false),
    ];
    for (lines, is_overlong) in cases {
        let input = format!("BEGIN:VCARD\n{lines}END:VCARD\nBEGIN:VCARD\nFN:Next\nEND:VCARD\n");
        let records = records(&input, 100).unwrap();
        assert_eq!(records.len(), 2, "{lines}");
        assert_eq!(records[0] == overlong(), is_overlong, "{lines}");
        assert_eq!(cells(&records[1]), [("fullName", "Next")]);
    }
    // Still at the end of the file, without END.
    let input = format!("BEGIN:VCARD\nFN:{}", "x".repeat(200));
    assert_eq!(records(&input, 100).unwrap(), [overlong()]);
}

#[test]
fn a_file_that_is_not_vcard_is_refused_with_its_line() {
    let cases = [
        ("Name,Phone\nJohn,555\n", 1),
        ("\n\r\nBEGIN:VCALENDAR\nEND:VCALENDAR\n", 3),
        ("VERSION:3.0\nBEGIN:VCARD\nEND:VCARD\n", 1),
        ("\u{feff}<?xml version=\"1.0\"?>\n", 1),
        ("\n\n\nEND:VCARD\n", 4),
        ("BEGIN:VCARDS\n", 1),
    ];
    for (input, line) in cases {
        match records(input, MAX_RECORD_BYTES) {
            Err(CardsError::NotVcard(message)) => assert_eq!(
                message,
                format!("line {line} is not BEGIN:VCARD: a vCard file starts with BEGIN:VCARD"),
                "{input:?}"
            ),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    // A file with nothing in it is no card, and no error.
    assert_eq!(records("\r\n\n", MAX_RECORD_BYTES).unwrap().len(), 0);
}

#[test]
fn a_bom_is_skipped_and_what_lies_between_cards_is_ignored() {
    let input = "\u{feff}BEGIN:VCARD\nFN:One\nEND:VCARD\n\nsome trailer\nEND:VCARD\n\
                 X-NOT-IN-A-CARD:1\n\u{feff}BEGIN:VCARD\nFN:Two\nEND:VCARD\n";
    let records = records(input, MAX_RECORD_BYTES).unwrap();
    let names: Vec<_> = records.iter().map(|r| cells(r)).collect();
    assert_eq!(names, [[("fullName", "One")], [("fullName", "Two")]]);
}

#[test]
fn vcard_is_recognised_by_content_type_or_file_name() {
    let cases = [
        (Some("text/vcard"), None, true),
        (Some("Text/X-VCard; charset=utf-8"), None, true),
        (Some("text/directory;profile=vCard"), None, true),
        (Some("text/csv"), Some("contacts.VCF"), true),
        (None, Some("export.vcard"), true),
        (Some("text/csv"), Some("contacts.csv"), false),
        (None, Some("vcf"), false),
        (None, None, false),
    ];
    for (content_type, file_name, expected) in cases {
        assert_eq!(
            is_vcard(content_type, file_name),
            expected,
            "{content_type:?} {file_name:?}"
        );
    }
}
