//! `GET /openapi.json`: the OpenAPI 3.1 document of the API, built from the handlers'
//! `#[utoipa::path]` annotations and their types as `router()` registers them (so a route
//! cannot be served without being documented), then completed here with what every route of a
//! kind shares: its authentication and the errors its extractors answer.

use super::error::{FieldError, Problem};
use utoipa::OpenApi;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder, Type,
};

/// The document's fixed parts; `router()` adds the paths.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "contact-import",
        description = "Asynchronous bulk contact import: post up to 3000 contacts as JSON or a CSV file of millions of rows, get an asyncSessionId at once, poll progress and per-row results. Every error is RFC 9457 application/problem+json.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "contacts", description = "Bulk intake and the stored contacts"),
        (name = "imports", description = "CSV files, import status and per-row results"),
        (name = "fields", description = "The tenant's typed custom attributes"),
        (name = "operations", description = "Health, metrics, queues and the operations page"),
    )
)]
pub struct ApiDoc;

/// The security scheme of the tenants' API keys.
const API_KEY: &str = "apiKey";
/// The security scheme of `ADMIN_TOKEN`.
const ADMIN_TOKEN: &str = "adminToken";

/// A problem+json response.
pub fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// A problem+json response with `Retry-After` (seconds).
fn problem_retry_after(description: &str) -> Response {
    let mut response = problem(description);
    response.headers.insert(
        "Retry-After".to_owned(),
        HeaderBuilder::new()
            .schema(Some(
                ObjectBuilder::new().schema_type(Type::Integer).build(),
            ))
            .description(Some("Seconds to wait before trying again"))
            .build()
            .into(),
    );
    response
}

/// Adds `response` under `status` unless the handler documented that status itself.
fn add(operation: &mut Operation, status: &str, response: impl FnOnce() -> Response) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| response().into());
}

/// What an answer leads to: (operation, its status, the JSON pointer of an id in its body, the
/// operations that take that id as `{id}`). Clients (and schemathesis's stateful phase)
/// follow these from a new import to its status, rows and files.
const LINKS: [(&str, &str, &str, &[&str]); 5] = [
    (
        "importContacts",
        "202",
        "/asyncSessionId",
        &IMPORT_OPERATIONS,
    ),
    ("importCsv", "202", "/asyncSessionId", &IMPORT_OPERATIONS),
    ("commitDryRun", "202", "/asyncSessionId", &IMPORT_OPERATIONS),
    (
        "listImports",
        "200",
        "/data/0/asyncSessionId",
        &IMPORT_OPERATIONS,
    ),
    (
        "listContacts",
        "200",
        "/data/0/id",
        &["getContact", "deleteContact", "restoreContact"],
    ),
];

const IMPORT_OPERATIONS: [&str; 6] = [
    "getImport",
    "listImportRows",
    "cancelImport",
    "commitDryRun",
    "getImportResultsCsv",
    "getImportErrorsCsv",
];

fn add_links(operation: &mut Operation) {
    for (from, status, pointer, targets) in LINKS {
        if operation.operation_id.as_deref() != Some(from) {
            continue;
        }
        if let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status) {
            for target in targets {
                let link = LinkBuilder::new()
                    .operation_id(*target)
                    .parameter("id", format!("$response.body#{pointer}"))
                    .build();
                response.links.insert((*target).to_owned(), link.into());
            }
        }
    }
}

/// Completes the document `router()` collected: security schemes and requirements, and the
/// answers every route of a kind can give whatever its handler does.
pub fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        API_KEY,
        SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).description(Some(
            "A tenant's API key (`contact-import tenant create NAME` prints it), as `Authorization: Bearer <key>`",
        )).build()),
    );
    components.add_security_scheme(
        ADMIN_TOKEN,
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The service's ADMIN_TOKEN, as `Authorization: Bearer <token>`",
                ))
                .build(),
        ),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let admin = path.starts_with("/api/v1/ops/overview");
        let tenant = path.starts_with("/api/v1/") && !admin;
        let operations = [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            add_links(operation);
            if tenant || admin {
                let scheme = if admin { ADMIN_TOKEN } else { API_KEY };
                operation.security = Some(vec![SecurityRequirement::new(scheme, [""; 0])]);
                add(operation, "401", || {
                    problem(if admin {
                        "No or wrong admin token"
                    } else {
                        "No or unknown API key"
                    })
                });
            }
            if tenant {
                add(operation, "400", || {
                    problem("The query string or body cannot be read; `detail` says where")
                });
                add(operation, "503", || {
                    problem_retry_after(
                        "The database or the broker is unavailable; nothing was done",
                    )
                });
                if matches!(method, HttpMethod::Post | HttpMethod::Delete) {
                    add(operation, "429", || {
                        problem_retry_after(
                            "The tenant's request rate (RATE_LIMIT_RPS, RATE_LIMIT_BURST) is used up, or its queued backlog is full; nothing was done",
                        )
                    });
                }
            }
            if admin {
                add(operation, "404", || {
                    problem("Operations endpoints are off: no ADMIN_TOKEN is configured")
                });
            }
            add(operation, "500", || {
                problem("An unexpected error; it is logged, not shown")
            });
        }
    }
    doc
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_operation_documents_its_errors_as_problems() {
        let doc = crate::api::openapi();
        assert_eq!(
            serde_json::to_value(&doc.openapi).ok(),
            Some(serde_json::json!("3.1.0"))
        );
        let mut operations = 0;
        for (path, item) in &doc.paths.paths {
            for operation in [&item.get, &item.post, &item.delete, &item.patch]
                .into_iter()
                .flatten()
            {
                operations += 1;
                let statuses: Vec<&str> = operation
                    .responses
                    .responses
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert!(
                    statuses.iter().any(|s| s.starts_with('2')),
                    "{path}: no success answer in {statuses:?}"
                );
                if path.starts_with("/api/v1/") {
                    assert!(statuses.contains(&"401"), "{path}: no 401");
                    assert!(operation.security.is_some(), "{path}: no security");
                }
            }
        }
        // Every route of `router()` (docs/api.md lists them) is in the document.
        assert_eq!(operations, 26, "{:?}", doc.paths.paths.keys());
    }
}
