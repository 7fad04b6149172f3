//! Files as people's tools write them: dates in the order a country writes them (and
//! birthdays without a year), the column names of the common contact exports, phones' vCard
//! files, and a dry run committed without sending its file again.

use crate::app::spawn_with;
use crate::checks::{codes, urlencode};
use crate::common::{phone, test_settings};
use contact_import::startup::Roles;
use serde_json::{Value, json};

/// `phone=…` for `contact_by`.
fn by_phone(n: usize) -> String {
    format!("phone={}", phone(n).replace('+', "%2B"))
}

/// A French file's `DD/MM/YYYY` birthdays and date fields are read in that order with
/// `dateFormat`, ISO dates still pass, and a birthday without a year (Mailchimp's `07/21`)
/// is left out with the warning `partial_date` while the rest of its row is applied.
#[tokio::test]
async fn dates_are_read_in_the_date_format_and_a_missing_year_leaves_the_field_unset() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    app.define_field(&key, &json!({"name": "signed_up", "type": "date"}))
        .await;
    let file = format!(
        "phone;firstName;birthday;signed_up\n\
         {};Léa;21/03/1987;02/01/2020\n\
         {};Noé;1990-12-31;\n\
         {};Inès;21/07;15/06/2021\n\
         {};Jules;31/02/1990;\n",
        phone(1),
        phone(2),
        phone(3),
        phone(4)
    );
    let id = app
        .import_csv(&key, "?dateFormat=DD%2FMM%2FYYYY", file)
        .await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(
        (status["created"].as_i64(), status["failed"].as_i64()),
        (Some(3), Some(1)),
        "{status}"
    );
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(codes(&rows[2], "warnings"), ["partial_date"], "{}", rows[2]);
    assert_eq!(rows[2]["warnings"][0]["field"], "birthday");
    assert_eq!(codes(&rows[3], "errors"), ["invalid_date"], "{}", rows[3]);
    assert_eq!(codes(&rows[0], "warnings"), Vec::<String>::new());

    let lea = app.contact_by(&key, &by_phone(1)).await.unwrap();
    assert_eq!(lea["birthday"], "1987-03-21");
    assert_eq!(lea["customAttributes"]["signed_up"], "2020-01-02");
    let noe = app.contact_by(&key, &by_phone(2)).await.unwrap();
    assert_eq!(noe["birthday"], "1990-12-31");
    let ines = app.contact_by(&key, &by_phone(3)).await.unwrap();
    assert_eq!(ines["firstName"], "Inès");
    assert_eq!(ines["birthday"], Value::Null);
    assert_eq!(ines["customAttributes"]["signed_up"], "2021-06-15");

    // Without a dateFormat, `21/03/1987` is not a date; an unknown format is a 422.
    let file = format!("phone,birthday\n{},21/03/1987\n", phone(5));
    let id = app.import_csv(&key, "", file.clone()).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["failed"], 1, "{status}");
    let refused = app
        .upload_csv(
            &key,
            &format!("?dateFormat={}", urlencode("DD-MM-YY")),
            file,
        )
        .await;
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["pointer"], "/dateFormat", "{problem}");
    app.finish().await;
}

/// A file reviewed by a dry run is applied by committing it, without sending it again: the
/// commit's rows get the outcomes the dry run said they would, row by row; the two imports
/// name each other; a second commit, the commit of an import that is not a dry run, and the
/// commit of a dry run whose rows are purged are refused.
#[tokio::test]
async fn a_committed_dry_run_applies_the_very_rows_it_reviewed_once() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let mut file = String::from("phone,firstName,email\n");
    for n in 0..1200 {
        file.push_str(&format!("{},P{n},p{n}@example.com\n", phone(n)));
    }
    file.push_str("not a phone,Bad,bad@example.com\n");
    file.push_str(&format!("{},Twice,t@example.com\n", phone(7)));
    let dry = app.import_csv(&key, "?dryRun=true", file).await;
    let reviewed = app.wait_finished(&key, &dry).await;
    assert_eq!(reviewed["dryRun"], true);
    assert_eq!(app.contact_by(&key, &by_phone(1)).await, None);

    let commit = |id: String| {
        app.request(
            reqwest::Method::POST,
            &format!("/api/v1/imports/{id}/commit"),
        )
        .bearer_auth(&key)
        .send()
    };
    let answer = commit(dry.clone()).await.unwrap();
    assert_eq!(answer.status(), 202);
    let accepted: Value = answer.json().await.unwrap();
    let applied = accepted["asyncSessionId"].as_str().unwrap().to_owned();
    assert_eq!(accepted["totalRows"], 1202);
    let status = app.wait_finished(&key, &applied).await;
    assert_eq!(status["reviewedIn"], dry.as_str(), "{status}");
    assert_eq!(status["dryRun"], false);
    for counter in ["totalRows", "created", "updated", "skipped", "failed"] {
        assert_eq!(status[counter], reviewed[counter], "{counter}: {status}");
    }
    let dry_status = app.get_json(&key, &format!("/api/v1/imports/{dry}")).await;
    assert_eq!(dry_status["committedAs"], applied.as_str());
    let strip = |rows: Vec<Value>| -> Vec<Value> {
        rows.into_iter()
            .map(|mut r| {
                r["contactId"] = Value::Null;
                r
            })
            .collect()
    };
    let (dry_rows, applied_rows) = (
        app.all_rows(&key, &dry, "").await,
        app.all_rows(&key, &applied, "").await,
    );
    assert_eq!(applied_rows.len(), 1202);
    assert_eq!(strip(dry_rows), strip(applied_rows.clone()));
    assert_eq!(codes(&applied_rows[7], "errors"), ["duplicate_in_file"]);
    let p1 = app.contact_by(&key, &by_phone(1)).await.expect("applied");
    assert_eq!(p1["firstName"], "P1");
    // The file's own tag names the import that applied it.
    let tag = format!("import-{}", &applied.replace('-', "")[..8]);
    let tags: Vec<&str> = p1["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tags.iter().any(|t| t.ends_with(&tag[7..])), "{tags:?}");
    let results = app
        .get_text(&key, &format!("/api/v1/imports/{applied}/results.csv"))
        .await;
    assert!(
        results.starts_with("phone,firstName,email,import_status"),
        "{results}"
    );

    // Once only; an applied import is no dry run; an unknown id is 404.
    for (id, expected) in [
        (dry.clone(), 409),
        (applied.clone(), 409),
        (uuid::Uuid::now_v7().to_string(), 404),
    ] {
        let answer = commit(id.clone()).await.unwrap();
        assert_eq!(answer.status(), expected, "{id}");
        assert_eq!(answer.headers()["content-type"], "application/problem+json");
    }

    // A dry run whose rows the retention period deleted: 410.
    let json_dry = app
        .import(
            &key,
            &json!({"contacts": [{"phone": phone(5000)}], "dryRun": true}),
        )
        .await;
    app.wait_finished(&key, &json_dry).await;
    sqlx::query("UPDATE imports SET finished_at = now() - interval '31 days' WHERE id = $1")
        .bind(json_dry.parse::<uuid::Uuid>().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let retention = std::time::Duration::from_secs(30 * 86_400);
    contact_import::store::maintenance::purge_expired(&app.pool, retention)
        .await
        .unwrap();
    assert_eq!(commit(json_dry).await.unwrap().status(), 410);
    app.finish().await;
}

/// The header Outlook's "Export to a file → Comma Separated Values" writes.
const OUTLOOK_HEADER: &str = "\"First Name\",\"Middle Name\",\"Last Name\",\"Title\",\"Suffix\",\"Initials\",\"Web Page\",\"Gender\",\"Birthday\",\"Anniversary\",\"Location\",\"Language\",\"Internet Free Busy\",\"Notes\",\"E-mail Address\",\"E-mail 2 Address\",\"E-mail 3 Address\",\"Primary Phone\",\"Home Phone\",\"Home Phone 2\",\"Mobile Phone\",\"Pager\",\"Home Fax\",\"Home Address\",\"Home Street\",\"Home Street 2\",\"Home Street 3\",\"Home Address PO Box\",\"Home City\",\"Home State\",\"Home Postal Code\",\"Home Country\",\"Spouse\",\"Children\",\"Manager's Name\",\"Assistant's Name\",\"Referred By\",\"Company Main Phone\",\"Business Phone\",\"Business Phone 2\",\"Business Fax\",\"Assistant's Phone\",\"Company\",\"Job Title\",\"Department\",\"Office Location\",\"Organizational ID Number\",\"Profession\",\"Account\",\"Business Address\",\"Business Street\",\"Business Street 2\",\"Business Street 3\",\"Business Address PO Box\",\"Business City\",\"Business State\",\"Business Postal Code\",\"Business Country\",\"Other Phone\",\"Other Fax\",\"Other Address\",\"Other Street\",\"Other Street 2\",\"Other Street 3\",\"Other Address PO Box\",\"Other City\",\"Other State\",\"Other Postal Code\",\"Other Country\",\"Callback\",\"Car Phone\",\"ISDN\",\"Radio Phone\",\"TTY/TDD Phone\",\"Telex\",\"User 1\",\"User 2\",\"User 3\",\"User 4\",\"Keywords\",\"Mileage\",\"Hobby\",\"Billing Information\",\"Directory Server\",\"Sensitivity\",\"Priority\",\"Private\",\"Categories\"";

/// The header of Google Contacts' "Google CSV" export.
const GOOGLE_HEADER: &str = "First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,Phonetic Last Name,Name Prefix,Name Suffix,Nickname,File As,Organization Name,Organization Title,Organization Department,Birthday,Notes,Photo,Labels,E-mail 1 - Label,E-mail 1 - Value,E-mail 2 - Label,E-mail 2 - Value,Phone 1 - Label,Phone 1 - Value,Phone 2 - Label,Phone 2 - Value,Address 1 - Label,Address 1 - Formatted,Address 1 - Street,Address 1 - City,Address 1 - PO Box,Address 1 - Region,Address 1 - Postal Code,Address 1 - Country,Address 1 - Extended Address";

/// One CSV record of `header`'s width with `cells` set by column name.
fn record(header: &str, cells: &[(&str, &str)]) -> String {
    let columns: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(header.as_bytes())
        .records()
        .next()
        .expect("a header")
        .expect("a CSV header")
        .iter()
        .map(str::to_owned)
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let row: Vec<&str> = columns
        .iter()
        .map(|c| {
            cells
                .iter()
                .find(|(name, _)| name == c)
                .map_or("", |(_, v)| v)
        })
        .collect();
    writer.write_record(&row).expect("a record");
    String::from_utf8(writer.into_inner().expect("written")).expect("UTF-8")
}

/// Outlook's and Google's exports, as they write them (every column, placeholders such as
/// Outlook's `0/0/00` and `Unspecified` included), import without a mapping: each contact's
/// fields are what the export says, a mobile number first and an address whole.
#[tokio::test]
async fn outlook_and_google_exports_import_without_a_mapping() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let mut outlook = format!("{OUTLOOK_HEADER}\r\n");
    outlook.push_str(&record(
        OUTLOOK_HEADER,
        &[
            ("First Name", "Ana"),
            ("Last Name", "Silva"),
            ("Title", "Dr."),
            ("Gender", "Unspecified"),
            ("Birthday", "5/17/1990"),
            ("E-mail Address", "ana@example.com"),
            ("Home Phone", &phone(1)),
            ("Mobile Phone", &phone(2)),
            ("Home Street", "12 Rue de Fès"),
            ("Home City", "Rabat"),
            ("Home Postal Code", "10000"),
            ("Business Street", "1 Tower Rd"),
            ("Business City", "Casablanca"),
            ("Job Title", "Nurse"),
            ("Categories", "VIP;Partners"),
            ("Sensitivity", "Normal"),
            ("Private", "False"),
        ],
    ));
    outlook.push_str(&record(
        OUTLOOK_HEADER,
        &[
            ("First Name", "Ben"),
            ("Title", "Mr."),
            ("Gender", "Unspecified"),
            ("Birthday", "0/0/00"),
            ("Business Phone", &phone(3)),
            ("Business Street", "1 Tower Rd"),
            ("Business City", "Casablanca"),
            ("Business Postal Code", "20000"),
        ],
    ));
    let id = app
        .import_csv(&key, "?dateFormat=MM%2FDD%2FYYYY&importTag=false", outlook)
        .await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["created"], 2, "{status}");
    let ana = app
        .contact_by(&key, &by_phone(2))
        .await
        .expect("Ana, by her mobile");
    let fields =
        |c: &Value, names: &[&str]| -> Vec<Value> { names.iter().map(|n| c[*n].clone()).collect() };
    let names = [
        "firstName",
        "lastName",
        "email",
        "occupation",
        "birthday",
        "gender",
        "address",
        "city",
        "zip",
        "tags",
    ];
    assert_eq!(
        fields(&ana, &names),
        fields(
            &json!({"firstName": "Ana", "lastName": "Silva", "email": "ana@example.com", "occupation": "Nurse",
                    "birthday": "1990-05-17", "gender": null, "address": "12 Rue de Fès", "city": "Rabat",
                    "zip": "10000", "tags": ["VIP", "Partners"]}),
            &names
        )
    );
    let ben = app
        .contact_by(&key, &by_phone(3))
        .await
        .expect("Ben, by his business phone");
    assert_eq!(
        fields(&ben, &names),
        fields(
            &json!({"firstName": "Ben", "lastName": null, "email": null, "occupation": null,
                    "birthday": null, "gender": null, "address": "1 Tower Rd", "city": "Casablanca",
                    "zip": "20000", "tags": []}),
            &names
        )
    );

    let mut google = format!("{GOOGLE_HEADER}\n");
    google.push_str(&record(
        GOOGLE_HEADER,
        &[
            ("First Name", "Chloé"),
            ("Last Name", "Martin"),
            ("Organization Name", "Acme"),
            ("Organization Title", "CTO"),
            ("Birthday", "--07-21"),
            ("Labels", "* myContacts ::: Friends"),
            ("E-mail 1 - Label", "* Home"),
            (
                "E-mail 1 - Value",
                "chloe@example.com ::: c.martin@example.com",
            ),
            ("Phone 1 - Label", "Mobile"),
            ("Phone 1 - Value", &phone(4)),
            ("Address 1 - Formatted", "5 Rue X\n75001 Paris\nFR"),
            ("Address 1 - Street", "5 Rue X"),
            ("Address 1 - City", "Paris"),
            ("Address 1 - Postal Code", "75001"),
            ("Address 1 - Country", "FR"),
        ],
    ));
    let id = app.import_csv(&key, "?importTag=false", google).await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["created"], 1, "{status}");
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(codes(&rows[0], "warnings"), ["partial_date"], "{}", rows[0]);
    let chloe = app.contact_by(&key, &by_phone(4)).await.expect("Chloé");
    assert_eq!(
        fields(&chloe, &names),
        fields(
            &json!({"firstName": "Chloé", "lastName": "Martin", "email": "chloe@example.com", "occupation": "CTO",
                    "birthday": null, "gender": null, "address": "5 Rue X", "city": "Paris",
                    "zip": "75001", "tags": []}),
            &names
        )
    );
    app.finish().await;
}

/// A phone's address book (`.vcf`, as iOS and Android write it) imports one contact per card,
/// as a raw `text/vcard` body or a multipart file part; its results file has the columns the
/// cards became; a file that is not vCard is a 422 and stores nothing.
#[tokio::test]
async fn vcard_files_import_one_contact_per_card() {
    let app = spawn_with(test_settings().await, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let cards = format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Apple Inc.//iPhone OS 17.0//EN\r\nN:Bennani;Yasmine;;;\r\nFN:Yasmine Bennani\r\n\
         ORG:Acme;\r\nTITLE:Engineer\r\nitem1.EMAIL;type=INTERNET;type=pref:yasmine@example.com\r\n\
         TEL;type=HOME;type=VOICE:{home}\r\nTEL;type=CELL;type=VOICE;type=pref:{cell}\r\n\
         item2.ADR;type=HOME;type=pref:;;7 Rue Atlas;Marrakech;;40000;Morocco\r\nBDAY:1992-04-03\r\n\
         CATEGORIES:Family,VIP\r\nPHOTO;ENCODING=b;TYPE=JPEG:{photo}\r\nEND:VCARD\r\n\
         BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=89lise;Ren=C3=A9e;;;\r\n\
         FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Ren=C3=A9e =C3=89lise\r\nTEL;CELL:{second}\r\nBDAY:--0521\r\nEND:VCARD\r\n\
         BEGIN:VCARD\r\nVERSION:4.0\r\nFN:No Phone\r\nEMAIL:nophone@example.com\r\nEND:VCARD\r\n",
        home = phone(10),
        cell = phone(11),
        second = phone(12),
        photo = "QUJD".repeat(50_000),
    );
    let answer = app
        .request(reqwest::Method::POST, "/api/v1/imports?importTag=false")
        .bearer_auth(&key)
        .header("content-type", "text/vcard")
        .body(cards.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let id = answer.json::<Value>().await.unwrap()["asyncSessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(
        (status["created"].as_i64(), status["failed"].as_i64()),
        (Some(2), Some(1)),
        "{status}"
    );
    let rows = app.all_rows(&key, &id, "").await;
    assert_eq!(codes(&rows[1], "warnings"), ["partial_date"], "{}", rows[1]);
    assert_eq!(
        codes(&rows[2], "errors"),
        ["missing_identifier"],
        "{}",
        rows[2]
    );
    let yasmine = app
        .contact_by(&key, &by_phone(11))
        .await
        .expect("by the CELL number");
    for (field, value) in [
        ("firstName", json!("Yasmine")),
        ("lastName", json!("Bennani")),
        ("fullName", json!("Yasmine Bennani")),
        ("email", json!("yasmine@example.com")),
        ("occupation", json!("Engineer")),
        ("address", json!("7 Rue Atlas")),
        ("city", json!("Marrakech")),
        ("zip", json!("40000")),
        ("birthday", json!("1992-04-03")),
        ("tags", json!(["Family", "VIP"])),
    ] {
        assert_eq!(yasmine[field], value, "{field}: {yasmine}");
    }
    let renee = app
        .contact_by(&key, &by_phone(12))
        .await
        .expect("the 2.1 card");
    assert_eq!(
        (renee["firstName"].as_str(), renee["lastName"].as_str()),
        (Some("Renée"), Some("Élise"))
    );
    let results = app
        .get_text(&key, &format!("/api/v1/imports/{id}/results.csv"))
        .await;
    assert!(
        results.starts_with("fullName,lastName,firstName,phone,email"),
        "{results}"
    );

    // A multipart part named *.vcf is vCard too; the same cards update the same contacts.
    let boundary = "vcard-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"contacts.vcf\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{cards}\r\n--{boundary}--\r\n"
    );
    let answer = app.upload_multipart(&key, boundary, body, 202).await;
    let again = app
        .wait_finished(&key, answer["asyncSessionId"].as_str().unwrap())
        .await;
    assert_eq!(
        (again["updated"].as_i64(), again["failed"].as_i64()),
        (Some(2), Some(1)),
        "{again}"
    );

    let before = app.get_json(&key, "/api/v1/imports").await["data"]
        .as_array()
        .map(Vec::len);
    let refused = app
        .request(reqwest::Method::POST, "/api/v1/imports")
        .bearer_auth(&key)
        .header("content-type", "text/vcard")
        .body("phone,firstName\n+212612345678,Not a card\n")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["code"], "invalid_file", "{problem}");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{problem}"
    );
    let after = app.get_json(&key, "/api/v1/imports").await["data"]
        .as_array()
        .map(Vec::len);
    assert_eq!(before, after);
    app.finish().await;
}
