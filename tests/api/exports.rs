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
    let answer = app
        .request(reqwest::Method::POST, "/api/v1/fields")
        .bearer_auth(&key)
        .json(&json!({"name": "signed_up", "type": "date"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
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
