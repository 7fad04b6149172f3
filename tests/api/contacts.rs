//! The contacts an import leaves, as the API shows them: soft delete and restore, custom
//! fields, and search, sort and paging.

use crate::app::{spawn_app, spawn_with};
use crate::checks::codes;
use crate::common::{admin_url, contacts, phone, test_settings_with};
use contact_import::startup::Roles;
use serde_json::{Value, json};

/// `DELETE /api/v1/contacts/{id}` soft-deletes: the contact leaves the list, keeps its
/// identifiers, and a later import skips it with `deleted_contact` unless `restoreDeleted`;
/// `POST …/restore` undoes it. Another tenant cannot touch it.
#[tokio::test]
async fn soft_deleted_contacts_are_skipped_unless_restored() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    app.import_and_wait(&key, &json!({"contacts": contacts(0, 1)}))
        .await;
    let stored = app.contact_by(&key, "phone=%2B212600000000").await.unwrap();
    let contact = stored["id"].as_str().expect("an id").to_owned();
    let other = app.tenant("other").await;
    let path = format!("/api/v1/contacts/{contact}");
    let refused = app.send(&other, reqwest::Method::DELETE, &path).await;
    assert_eq!(refused.status(), 404, "another tenant's contact");
    let deleted = app.send(&key, reqwest::Method::DELETE, &path).await;
    assert_eq!(deleted.status(), 200);
    let deleted: Value = deleted.json().await.unwrap();
    assert!(deleted["deletedAt"].is_string(), "{deleted}");
    let listed = app
        .get_json(&key, "/api/v1/contacts?phone=%2B212600000000")
        .await;
    assert_eq!(listed["data"], json!([]), "a deleted contact is not listed");

    let id = app
        .import(
            &key,
            &json!({"contacts": [{"phone": phone(0), "firstName": "Back"}]}),
        )
        .await;
    let status = app.wait_finished(&key, &id).await;
    assert_eq!(status["skipped"], 1);
    let row = &app.all_rows(&key, &id, "").await[0];
    assert_eq!(codes(row, "warnings"), ["deleted_contact"]);
    assert!(row["contactId"].is_string());
    let c = app.contact_by(&key, "phone=%2B212600000000").await.unwrap();
    assert!(c["deletedAt"].is_string());
    assert_eq!(c["firstName"], "First0");

    let status = app.import_and_wait(&key, &json!({"restoreDeleted": true, "contacts": [{"phone": phone(0), "firstName": "Back"}]})).await;
    assert_eq!(status["updated"], 1);
    let c = app.contact_by(&key, "phone=%2B212600000000").await.unwrap();
    assert!(c["deletedAt"].is_null());
    assert_eq!(c["firstName"], "Back");

    // Deleted again through the API, then restored through it.
    let again = app.send(&key, reqwest::Method::DELETE, &path).await;
    assert_eq!(again.status(), 200);
    let restored = app
        .send(&key, reqwest::Method::POST, &format!("{path}/restore"))
        .await;
    assert_eq!(restored.status(), 200);
    let restored: Value = restored.json().await.unwrap();
    assert!(restored["deletedAt"].is_null(), "{restored}");
    assert_eq!(restored["firstName"], "Back");
    let listed = app
        .get_json(&key, "/api/v1/contacts?phone=%2B212600000000")
        .await;
    assert_eq!(listed["data"][0]["id"], contact.as_str());
    let missing = app
        .send(
            &key,
            reqwest::Method::POST,
            &format!("/api/v1/contacts/{}/restore", uuid::Uuid::new_v4()),
        )
        .await;
    assert_eq!(missing.status(), 404);
    app.finish().await;
}

#[tokio::test]
async fn custom_fields_are_typed_and_listed() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    let post = |body: Value| {
        let app = &app;
        let key = key.clone();
        async move {
            app.request(reqwest::Method::POST, "/api/v1/fields")
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    for (body, expected) in [
        (json!({"name": "account_balance", "type": "number"}), 201),
        (
            json!({"name": "level", "type": "enum", "options": ["a", "b"]}),
            201,
        ),
        (json!({"name": "account_balance", "type": "string"}), 409),
        (json!({"name": "x", "type": "colour"}), 422),
        (json!({"name": "bad name!", "type": "string"}), 422),
        (json!({"name": "e", "type": "enum"}), 422),
        (json!({"type": "string"}), 422),
    ] {
        let response = post(body.clone()).await;
        assert_eq!(response.status(), expected, "{body}");
    }
    let list = app.get_json(&key, "/api/v1/fields").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["account_balance", "level"]);
    assert_eq!(list["data"][1]["type"], "enum");
    assert_eq!(list["data"][1]["options"], json!(["a", "b"]));
    app.finish().await;
}

/// `search` finds the start of a word of the names or the email, in any case and with or
/// without accents, and the start (with or without the country code) or the end of the
/// phone; every term must match. `sort` and `order`
/// order the pages (ties by id), and the pages add up.
#[tokio::test]
async fn contacts_are_searched_sorted_and_paged() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    app.import_and_wait(&key, &json!({"contacts": [
        {"phone": phone(0), "firstName": "Amina", "lastName": "Zahir", "email": "amina@example.com"},
        {"phone": phone(1), "firstName": "Youssef", "lastName": "Alami", "email": "y.alami@corp.ma"},
        {"phone": phone(2), "firstName": "Karim", "lastName": "Benali", "email": "kb@example.com"},
        {"phone": phone(3), "firstName": "Sara", "fullName": "Ét-Tahiri SSeli"},
    ]}))
    .await;
    for (query, expected) in [
        ("search=ala", vec!["Youssef"]),
        ("search=ALAMI", vec!["Youssef"]),
        ("search=corp.ma", vec!["Youssef"]),
        ("search=600000002", vec!["Karim"]),
        (
            "search=%2B2126000000",
            vec!["Sara", "Karim", "Youssef", "Amina"],
        ),
        ("search=0002", vec!["Karim"]),
        ("search=lami", vec![]),
        ("search=amina%20zah", vec!["Amina"]),
        ("search=amina%20benali", vec![]),
        ("search=ET-TAH", vec!["Sara"]),
        ("search=tahiri", vec!["Sara"]),
        ("search=sseli", vec!["Sara"]),
        ("search=y.alami%40co", vec!["Youssef"]),
        ("search=%40corp", vec!["Youssef"]),
        (
            "search=example.com&sort=firstName&order=asc",
            vec!["Amina", "Karim"],
        ),
        ("search=%25", vec![]),
        ("search=_", vec![]),
        (
            "sort=firstName&order=asc",
            vec!["Amina", "Karim", "Sara", "Youssef"],
        ),
        (
            "sort=firstName&order=desc",
            vec!["Youssef", "Sara", "Karim", "Amina"],
        ),
        // No last name: last going up, first going down.
        (
            "sort=lastName&order=asc",
            vec!["Youssef", "Karim", "Amina", "Sara"],
        ),
        (
            "sort=lastName&order=desc",
            vec!["Sara", "Amina", "Karim", "Youssef"],
        ),
        (
            "sort=email&order=asc",
            vec!["Amina", "Karim", "Youssef", "Sara"],
        ),
        (
            "sort=phone&order=desc",
            vec!["Sara", "Karim", "Youssef", "Amina"],
        ),
        (
            "sort=createdAt&order=asc",
            vec!["Amina", "Youssef", "Karim", "Sara"],
        ),
    ] {
        let page = app
            .get_json(&key, &format!("/api/v1/contacts?{query}"))
            .await;
        assert_eq!(first_names(&page), expected, "{query}");
        assert_eq!(page["meta"]["total"], expected.len(), "{query}");
    }
    let second = app
        .get_json(
            &key,
            "/api/v1/contacts?sort=firstName&order=asc&perPage=3&page=2",
        )
        .await;
    assert_eq!(first_names(&second), ["Youssef"]);
    assert_eq!(second["meta"]["total"], 4);
    // Without filters, meta.total comes from the kept counts: right after a delete, a restore
    // and an import that restores, before and after the counts are folded.
    let total = |page: &Value| page["meta"]["total"].as_i64();
    let sara = app.contact_by(&key, "phone=%2B212600000003").await.unwrap();
    let path = format!("/api/v1/contacts/{}", sara["id"].as_str().unwrap());
    assert_eq!(
        app.send(&key, reqwest::Method::DELETE, &path)
            .await
            .status(),
        200
    );
    assert_eq!(
        total(&app.get_json(&key, "/api/v1/contacts").await),
        Some(3)
    );
    assert_eq!(
        total(
            &app.get_json(&key, "/api/v1/contacts?includeDeleted=true")
                .await
        ),
        Some(4)
    );
    contact_import::store::contacts::fold_counts(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        total(&app.get_json(&key, "/api/v1/contacts").await),
        Some(3)
    );
    app.import_and_wait(
        &key,
        &json!({"restoreDeleted": true, "contacts": [{"phone": phone(3)}, {"phone": phone(4)}]}),
    )
    .await;
    assert_eq!(
        total(&app.get_json(&key, "/api/v1/contacts").await),
        Some(5)
    );
    assert_eq!(
        total(
            &app.get_json(&key, "/api/v1/contacts?includeDeleted=true")
                .await
        ),
        Some(5)
    );
    let other = app.tenant("other").await;
    assert_eq!(
        total(&app.get_json(&other, "/api/v1/contacts").await),
        Some(0)
    );

    for query in ["sort=age", "order=up", "search="] {
        let response = app.get(&key, &format!("/api/v1/contacts?{query}")).await;
        if query == "search=" {
            assert_eq!(response.status(), 200, "an empty search is no search");
        } else {
            assert_eq!(response.status(), 422, "{query}");
        }
    }
    app.finish().await;
}

/// On a database whose default collation is a language's (ICU `en-US`, which puts `_` before
/// `-` before `.` before letters), phones and emails still sort, and page by cursor, by code
/// point, and tags match byte for byte (migration 0027); names keep the language's order.
#[tokio::test]
async fn identifiers_sort_by_code_point_whatever_the_database_collation() {
    let settings = test_settings_with(
        &admin_url(),
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
    )
    .await;
    let app = spawn_with(settings, Roles::ALL).await;
    let key = app.tenant("acme").await;
    let names = ["ab", "a_c", "a-b", "a.d"];
    let rows: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({"phone": phone(i), "firstName": name, "email": format!("{name}@example.com"),
                   "tags": [if i % 2 == 0 { "Vip" } else { "vip" }]})
        })
        .collect();
    app.import_and_wait(&key, &json!({ "contacts": rows }))
        .await;
    let code_point_order = ["a-b", "a.d", "a_c", "ab"];
    for (query, expected, what) in [
        (
            "sort=firstName",
            ["a_c", "a-b", "a.d", "ab"],
            "the language's order",
        ),
        ("sort=email", code_point_order, "code point order"),
    ] {
        let page = app
            .get_json(&key, &format!("/api/v1/contacts?{query}&order=asc"))
            .await;
        assert_eq!(first_names(&page), expected, "{what}");
    }
    let mut walked = Vec::new();
    let mut query = "sort=email&order=asc&perPage=1".to_owned();
    loop {
        let page = app
            .get_json(&key, &format!("/api/v1/contacts?{query}"))
            .await;
        walked.extend(first_names(&page));
        match page["meta"]["nextCursor"].as_str() {
            Some(cursor) => query = format!("after={cursor}&perPage=1"),
            None => break,
        }
    }
    assert_eq!(walked, code_point_order, "the cursor's pages");
    let tagged = app
        .get_json(&key, "/api/v1/contacts?tag=vip&sort=email&order=asc")
        .await;
    assert_eq!(first_names(&tagged), ["a.d", "a_c"], "a tag matches whole");
    app.finish().await;
}

/// `?after=<meta.nextCursor>` walks every sort both ways, contacts without the sort's value
/// included (last going up, first going down), and gives exactly the list a single page
/// gives, in its order, with `nextCursor` null on the last page; a cursor of another sort, a
/// made-up one, or one beside `page` is a 422. A match of more than 1,000 contacts is counted
/// to that point and its total marked as an estimate.
#[tokio::test]
async fn keyset_pages_walk_every_sort_and_big_totals_are_estimates() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    // 23 contacts: some without a first or last name, some without a phone or an email, and
    // names that tie, so that the id decides.
    let people = mixed_people(23, |i| format!("p{i}@example.com"));
    app.import_and_wait(&key, &json!({"dedupeOn": "externalId", "contacts": people}))
        .await;
    let ids = page_ids;
    for sort in ["firstName", "lastName", "phone", "email", "createdAt"] {
        for order in ["asc", "desc"] {
            let everyone = app
                .get_json(
                    &key,
                    &format!("/api/v1/contacts?sort={sort}&order={order}&perPage=1000"),
                )
                .await;
            if sort == "createdAt" {
                // Creation order is id order (migration 0022): each contact's createdAt is the
                // time its UUIDv7 carries, and the list's times run the list's way.
                let times: Vec<time::OffsetDateTime> = everyone["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        let at = time::OffsetDateTime::parse(
                            c["createdAt"].as_str().unwrap(),
                            &time::format_description::well_known::Rfc3339,
                        )
                        .unwrap();
                        let id: uuid::Uuid = c["id"].as_str().unwrap().parse().unwrap();
                        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
                        assert_eq!(
                            at.unix_timestamp_nanos(),
                            i128::from(secs) * 1_000_000_000 + i128::from(nanos),
                            "createdAt of {id}"
                        );
                        at
                    })
                    .collect();
                assert!(
                    times.windows(2).all(|w| if order == "asc" {
                        w[0] <= w[1]
                    } else {
                        w[0] >= w[1]
                    }),
                    "createdAt {order}: {times:?}"
                );
            }
            // A search's few matches are sorted apart from the index (store::contacts::
            // candidates_sql): in the same order as the whole list.
            let with_email: Vec<String> = everyone["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["email"].is_string())
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect();
            for filter in ["", "&tag=all", "&search=p"] {
                let whole = app
                    .get_json(
                        &key,
                        &format!("/api/v1/contacts?sort={sort}&order={order}&perPage=1000{filter}"),
                    )
                    .await;
                assert_eq!(whole["meta"]["nextCursor"], Value::Null);
                let expected = ids(&whole);
                if filter == "&search=p" {
                    assert_eq!(expected, with_email, "sort={sort}&order={order}{filter}");
                } else {
                    assert_eq!(expected.len(), 23);
                }
                let mut walked = Vec::new();
                let mut query = format!("sort={sort}&order={order}&perPage=4{filter}");
                let mut pages = 0;
                loop {
                    let page = app
                        .get_json(&key, &format!("/api/v1/contacts?{query}"))
                        .await;
                    pages += 1;
                    assert!(pages <= 6, "{sort} {order}{filter}: the walk does not end");
                    assert_eq!(page["meta"]["total"], expected.len());
                    assert_eq!(page["meta"]["totalIsEstimate"], false);
                    walked.extend(ids(&page));
                    match page["meta"]["nextCursor"].as_str() {
                        // Only the first names the sort; the cursor carries it after that.
                        Some(cursor) => query = format!("after={cursor}&perPage=4{filter}"),
                        None => break,
                    }
                }
                assert_eq!(walked, expected, "sort={sort}&order={order}{filter}");
                // `page` gives the same pages, and a cursor to go on from.
                let second = app
                    .get_json(
                        &key,
                        &format!(
                            "/api/v1/contacts?sort={sort}&order={order}&perPage=4&page=2{filter}"
                        ),
                    )
                    .await;
                assert_eq!(ids(&second), expected[4..8]);
                let cursor = second["meta"]["nextCursor"].as_str().unwrap();
                let third = app
                    .get_json(
                        &key,
                        &format!("/api/v1/contacts?after={cursor}&perPage=4{filter}"),
                    )
                    .await;
                assert_eq!(ids(&third), expected[8..12]);
                assert_eq!(third["meta"]["page"], Value::Null);
            }
        }
    }
    let first = app
        .get_json(&key, "/api/v1/contacts?sort=email&order=asc&perPage=2")
        .await;
    let cursor = first["meta"]["nextCursor"].as_str().unwrap().to_owned();
    for (query, field) in [
        (format!("after={cursor}&sort=phone"), "after"),
        (format!("after={cursor}&order=desc"), "after"),
        (format!("after={cursor}&page=2"), "page"),
        ("after=bm90LWEtY3Vyc29y".to_owned(), "after"),
        ("after=%7B%7D".to_owned(), "after"),
    ] {
        let response = app.get(&key, &format!("/api/v1/contacts?{query}")).await;
        assert_eq!(response.status(), 422, "{query}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["pointer"], field, "{query}: {problem}");
    }

    // 1,001 contacts with one tag: counted up to 1,000, then estimated.
    let limit = contact_import::store::contacts::EXACT_COUNT_LIMIT as usize;
    for from in (0..=limit).step_by(3000) {
        let batch: Vec<Value> = (from..(from + 3000).min(limit + 1))
            .map(|i| json!({"externalId": format!("big{i}"), "tags": ["big"], "firstName": "Bigname"}))
            .collect();
        app.import_and_wait(&key, &json!({"dedupeOn": "externalId", "contacts": batch}))
            .await;
    }
    let tagged = app
        .get_json(&key, "/api/v1/contacts?tag=big&perPage=1")
        .await;
    assert_eq!(
        tagged["meta"]["totalIsEstimate"], true,
        "{}",
        tagged["meta"]
    );
    assert!(tagged["meta"]["total"].as_i64().unwrap() > limit as i64);
    // A search that matches more than are counted: read off the sort index, total estimated.
    let searched = app
        .get_json(
            &key,
            "/api/v1/contacts?search=bign&perPage=2&sort=createdAt&order=asc",
        )
        .await;
    assert_eq!(
        searched["meta"]["totalIsEstimate"], true,
        "{}",
        searched["meta"]
    );
    let cursor = searched["meta"]["nextCursor"].as_str().unwrap();
    let next = app
        .get_json(
            &key,
            &format!("/api/v1/contacts?search=bign&perPage=2&after={cursor}"),
        )
        .await;
    let mut four = ids(&searched);
    four.extend(ids(&next));
    let sorted = app
        .get_json(
            &key,
            "/api/v1/contacts?tag=big&perPage=4&sort=createdAt&order=asc",
        )
        .await;
    assert_eq!(four, ids(&sorted));
    let all = app.get_json(&key, "/api/v1/contacts?perPage=1").await;
    assert_eq!(
        all["meta"]["totalIsEstimate"], false,
        "the kept counts are exact"
    );
    assert_eq!(all["meta"]["total"], limit + 1 + 23);
    app.finish().await;
}

/// `count` contacts tagged `all`, keyed by external id: some without a first or last name,
/// some without a phone or an email (`email` gives the rest theirs), and names that tie, so
/// that the id decides.
fn mixed_people(count: usize, email: impl Fn(usize) -> String) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let mut c = json!({"externalId": format!("x{i}"), "tags": ["all"]});
            if i % 4 != 0 {
                c["phone"] = json!(phone(i));
            }
            if i % 3 != 0 {
                c["email"] = json!(email(i));
            }
            if i % 5 != 0 {
                c["firstName"] = json!(["Ali", "Zoé", "Ben"][i % 3]);
            }
            if i % 2 == 0 {
                c["lastName"] = json!(format!("L{}", i % 7));
            }
            c
        })
        .collect()
}

/// The ids of a tenant's contacts in a list's order, as SQL orders them (the oracle of the
/// page tests): `filter` is a condition on `contacts`.
async fn ordered_ids(
    app: &crate::app::TestApp,
    tenant: &str,
    filter: &str,
    order: &str,
) -> Vec<String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT c.id::text FROM contacts c JOIN tenants t ON t.id = c.tenant_id
         WHERE t.name = $1 AND {filter} ORDER BY {order}"
    )))
    .bind(tenant)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// The first names of a page's contacts, in its order ("" for a contact without one).
fn first_names(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["firstName"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn page_ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Pages by `page` number read the far half of a list from its end (store::contacts::list,
/// `offset_page`): every page of every sort, each way, with and without the deleted contacts,
/// is the list as SQL orders it, with ties, NULLs and deleted contacts in it.
#[tokio::test]
async fn numbered_pages_of_every_sort_add_up_to_the_whole_list() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    // Emails in another order than the ids.
    let people = mixed_people(29, |i| format!("p{}@example.com", (i * 7) % 29));
    app.import_and_wait(&key, &json!({"dedupeOn": "externalId", "contacts": people}))
        .await;
    for external in ["x3", "x8", "x20"] {
        let contact = app
            .contact_by(&key, &format!("externalId={external}"))
            .await
            .unwrap();
        let path = format!("/api/v1/contacts/{}", contact["id"].as_str().unwrap());
        let deleted = app.send(&key, reqwest::Method::DELETE, &path).await;
        assert_eq!(deleted.status(), 200);
    }
    for (sort, column) in [
        ("firstName", "first_name"),
        ("lastName", "last_name"),
        ("phone", "phone"),
        ("email", "email"),
        ("createdAt", "created_at"),
    ] {
        for order in ["asc", "desc"] {
            for deleted in [false, true] {
                let filter = if deleted {
                    "TRUE"
                } else {
                    "c.deleted_at IS NULL"
                };
                let expected = ordered_ids(
                    &app,
                    "acme",
                    filter,
                    &format!("c.{column} {order}, c.id {order}"),
                )
                .await;
                assert_eq!(expected.len(), if deleted { 29 } else { 26 });
                let mut listed = Vec::new();
                for number in 1..=11 {
                    let page = app
                        .get_json(
                            &key,
                            &format!(
                                "/api/v1/contacts?sort={sort}&order={order}&includeDeleted={deleted}&perPage=3&page={number}"
                            ),
                        )
                        .await;
                    let what = format!("{sort} {order} deleted={deleted} page {number}");
                    assert_eq!(page["meta"]["total"], expected.len(), "{what}");
                    let ids = page_ids(&page);
                    let first = (number - 1) * 3;
                    let rest = expected.len().saturating_sub(first);
                    assert_eq!(ids.len(), rest.min(3), "{what}");
                    assert_eq!(
                        page["meta"]["nextCursor"].is_string(),
                        rest > 3,
                        "{what}: {}",
                        page["meta"]
                    );
                    listed.extend(ids);
                }
                assert_eq!(listed, expected, "{sort} {order} deleted={deleted}");
            }
        }
    }
    app.finish().await;
}

/// A search's page is found three ways (store::contacts::list, `search_page`): in the first
/// contacts of the list when its term is common, among its matches read through the words
/// index when they are few, and by reading the list in order past that. Each gives the page
/// SQL gives, with a total that is exact or marked as an estimate.
#[tokio::test]
async fn a_search_page_is_the_same_whichever_way_it_is_found() {
    let app = spawn_app().await;
    let key = app.tenant("acme").await;
    // 5,200 contacts: 5,190 named Alpha (more than the 5,000 matches read through the words
    // index), 10 named Gamma spread over them.
    let people: Vec<Value> = (0..5200)
        .map(|i| {
            json!({
                "phone": phone(i),
                "firstName": if i % 520 == 0 { "Gamma" } else { "Alpha" },
                "lastName": format!("L{}", i % 13),
            })
        })
        .collect();
    for chunk in people.chunks(3000) {
        app.import_and_wait(&key, &json!({"contacts": chunk})).await;
    }
    let alpha = "c.first_name = 'Alpha'";
    let gamma = "c.first_name = 'Gamma'";
    for (query, filter, order, offset, estimated) in [
        // Common, first page: found in the first contacts of the list.
        ("search=alpha&perPage=50", alpha, "c.id DESC", 0, true),
        (
            "search=alph&sort=lastName&order=asc&perPage=50&page=3",
            alpha,
            "c.last_name ASC, c.id ASC",
            100,
            true,
        ),
        // Rare: its 10 matches sorted.
        ("search=gamma&perPage=50", gamma, "c.id DESC", 0, false),
        (
            "search=gamma&sort=lastName&order=desc&perPage=4&page=2",
            gamma,
            "c.last_name DESC, c.id DESC",
            4,
            false,
        ),
        // Common and deep: the list read in order.
        (
            "search=alpha&perPage=50&page=70",
            alpha,
            "c.id DESC",
            3450,
            true,
        ),
        (
            "search=alpha&sort=createdAt&order=asc&perPage=50&page=90",
            alpha,
            "c.id ASC",
            4450,
            true,
        ),
    ] {
        let page = app
            .get_json(&key, &format!("/api/v1/contacts?{query}"))
            .await;
        let expected = ordered_ids(&app, "acme", filter, order).await;
        let per_page = page["meta"]["perPage"].as_u64().unwrap() as usize;
        assert_eq!(
            page_ids(&page),
            expected[offset..(offset + per_page).min(expected.len())],
            "{query}"
        );
        assert_eq!(page["meta"]["totalIsEstimate"], estimated, "{query}");
        let total = page["meta"]["total"].as_u64().unwrap() as usize;
        if estimated {
            assert!(total > 1000, "{query}: total {total}");
        } else {
            assert_eq!(total, expected.len(), "{query}");
        }
    }
    app.finish().await;
}
