//! `POST /api/v1/imports`: a CSV file as `multipart/form-data` (`options` part, then `file`
//! part) or as a raw `text/csv` body with the options as query parameters. The body is
//! streamed into `intake::upload`; the answer is 202 once the whole file is stored.

use super::error::{ApiError, FieldError, Problem};
use super::slots::UploadSlot;
use super::{ApiQuery, AppState};
use crate::intake::csv::{options_from_query, parse_options};
use crate::intake::gzip::{self, BodyEncoding};
use crate::intake::upload::{FileSpec, store_csv};
use crate::intake::{Accepted, IntakeError};
use crate::intake::{vcard, xlsx};
use crate::store::fields;
use crate::store::tenants::Tenant;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// `POST /api/v1/imports`.
#[utoipa::path(
    post, path = "/api/v1/imports", operation_id = "importCsv", tag = "imports",
    summary = "Import a CSV or .xlsx file, asynchronously",
    description = "A multipart upload (an `options` part, then the `file` part) or a raw body with the options as query parameters. A CSV file is streamed; an .xlsx file (by its content type or a file name ending .xlsx) is read whole, up to MAX_XLSX_BYTES, and its first sheet imported as CSV would be. Answers 202 once the whole file is stored.",
    request_body(content(
        (crate::api::schema::CsvUpload = "multipart/form-data"),
        (String = "text/csv"),
        (crate::api::schema::XlsxFile = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    )),
    params(crate::api::schema::CsvQuery),
    responses(
        (status = 202, description = "Stored; poll `statusUrl`", body = Accepted),
        (status = 413, description = "The file is larger than MAX_UPLOAD_BYTES (CSV) or MAX_XLSX_BYTES (.xlsx)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A Content-Encoding other than gzip (the body may be sent gzip-compressed; every limit counts it decompressed)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad options, mapping or header; `errors` points at each", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiQuery(query): ApiQuery<Vec<(String, String)>>,
    request: Request,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let options =
        options_from_query(&query).map_err(|e| ApiError::unprocessable("bad import options", e))?;
    // A file's size is known only once read: refuse when the backlog is full already (or the
    // declared length would overflow it).
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    crate::intake::check_backlog(&state.pool, &state.settings, tenant.id, 1, declared).await?;
    // A place among the files this process receives at once, held until the file is stored.
    let slot = state.uploads.take(tenant.id)?;
    // The upload runs in a task of its own: if the client goes away, hyper drops this
    // handler, but the task still sees the body end and marks the import failed.
    tokio::spawn(receive(state, tenant, options, request, slot))
        .await
        .map_err(|_| ApiError::internal())?
}

async fn receive(
    state: AppState,
    tenant: Tenant,
    mut options: Map<String, Value>,
    request: Request,
    mut slot: UploadSlot,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let encoding = BodyEncoding::from_header(
        request
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    )?;
    if is_multipart && encoding == BodyEncoding::Gzip {
        return Err(IntakeError::UnsupportedEncoding(
            "a gzip-compressed multipart body is not taken: send the compressed file as the raw body (Content-Type: text/csv, Content-Encoding: gzip) with the options as query parameters".into(),
        )
        .into());
    }
    if !is_multipart {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut spec = spec(&state, &tenant, &options).await?;
        spec.gzip = encoding == BodyEncoding::Gzip;
        spec.vcard = vcard::is_vcard(content_type.as_deref(), None);
        let body = request.into_body().into_data_stream();
        if xlsx::is_xlsx(content_type.as_deref(), None) {
            slot.workbook()?;
            return upload_xlsx(&state, &tenant, spec, body).await;
        }
        return upload(&state, &tenant, spec, body).await;
    }
    let mut multipart = Multipart::from_request(request, &state)
        .await
        .map_err(|e| ApiError::bad_request(format!("bad multipart body: {}", e.body_text())))?;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("bad multipart body: {}", e.body_text())))?
    {
        match field.name() {
            Some("options") => {
                let text = field.text().await.map_err(|e| {
                    ApiError::bad_request(format!(
                        "the options part could not be read: {}",
                        e.body_text()
                    ))
                })?;
                match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(part)) => options.extend(part),
                    Ok(_) => return Err(options_error("the options part must be a JSON object")),
                    Err(e) => {
                        return Err(options_error(&format!(
                            "the options part is not valid JSON: {e}"
                        )));
                    }
                }
            }
            Some("file") => {
                let mut spec = spec(&state, &tenant, &options).await?;
                spec.vcard = vcard::is_vcard(field.content_type(), field.file_name());
                if xlsx::is_xlsx(field.content_type(), field.file_name()) {
                    slot.workbook()?;
                    return upload_xlsx(&state, &tenant, spec, field).await;
                }
                return upload(&state, &tenant, spec, field).await;
            }
            _ => {}
        }
    }
    Err(ApiError::unprocessable(
        "no file: send the CSV as the multipart part named file (after the options part), or as a text/csv body",
        vec![FieldError::new(
            "/file",
            "missing_file",
            "a part named file is required",
        )],
    ))
}

/// An `.xlsx` file: held whole (up to `MAX_XLSX_BYTES`), its first sheet read as a stream
/// and imported as a CSV file is.
async fn upload_xlsx<S, E>(
    state: &AppState,
    tenant: &Tenant,
    spec: FileSpec,
    body: S,
) -> Result<(StatusCode, Json<Accepted>), ApiError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let limit = state.settings.max_xlsx_bytes;
    let mut body = pin!(body);
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("the upload was cut off: {e}")))?;
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::too_large_because(format!(
                "an .xlsx file is read whole, so it may have at most {limit} bytes (MAX_XLSX_BYTES); nothing was stored. Save the sheet as CSV, which is streamed, for bigger files"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    if spec.gzip {
        let compressed = bytes;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        bytes = tokio::task::spawn_blocking(move || gzip::gunzip(&compressed, limit, "workbook"))
            .await
            .map_err(|_| ApiError::internal())??;
    }
    // The sheet is read as a stream of cells in a blocking task and handed on as CSV, a chunk
    // at a time, through the CSV path; a workbook that cannot be read is refused before that.
    let max_unpacked = state.settings.max_xlsx_unpacked_bytes;
    let (opened, is_open) = tokio::sync::oneshot::channel::<Result<(), IntakeError>>();
    let (chunks, received) = mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let result = xlsx::stream_first_sheet(
            &bytes,
            max_unpacked,
            |open| opened.send(open).is_ok(),
            |csv| chunks.blocking_send(Ok(Bytes::from(csv))).is_ok(),
        );
        if let Err(reason) = result {
            let _ = chunks.blocking_send(Err(std::io::Error::other(reason)));
        }
    });
    match is_open.await {
        Ok(Ok(())) => {}
        Ok(Err(refused)) => return Err(refused.into()),
        Err(_) => return Err(ApiError::internal()),
    }
    let csv = futures_util::stream::unfold(received, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    upload(state, tenant, spec, csv).await
}

fn options_error(message: &str) -> ApiError {
    ApiError::unprocessable(
        message.to_owned(),
        vec![FieldError::new("/options", "invalid_value", message)],
    )
}

async fn spec(
    state: &AppState,
    tenant: &Tenant,
    options: &Map<String, Value>,
) -> Result<FileSpec, ApiError> {
    let options = parse_options(options)
        .map_err(|e| ApiError::unprocessable("bad import options; nothing was stored", e))?;
    if let Some(url) = &options.import.callback_url {
        crate::callback::check_url(url, state.settings.callback_allow_private)
            .await
            .map_err(ApiError::bad_callback)?;
    }
    Ok(FileSpec {
        options,
        fields: fields::kinds(&state.pool, tenant.id).await?,
        batch_size: state.settings.batch_size as usize,
        gzip: false,
        vcard: false,
        max_bytes: state.settings.max_upload_bytes,
    })
}

/// Feeds the body's chunks to the storing side, stopping at the upload size limit.
async fn upload<S, E>(
    state: &AppState,
    tenant: &Tenant,
    spec: FileSpec,
    body: S,
) -> Result<(StatusCode, Json<Accepted>), ApiError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let limit = state.settings.max_upload_bytes;
    let (chunks, received) = mpsc::channel::<std::io::Result<Bytes>>(8);
    let too_large = Arc::new(AtomicBool::new(false));
    let pump = {
        let too_large = too_large.clone();
        async move {
            let mut body = pin!(body);
            let mut total = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
                if let Ok(bytes) = &chunk {
                    total += bytes.len() as u64;
                    if total > limit {
                        too_large.store(true, Ordering::Relaxed);
                        let _ = chunks
                            .send(Err(std::io::Error::other(
                                "the file is larger than the upload limit",
                            )))
                            .await;
                        return;
                    }
                }
                let failed = chunk.is_err();
                if chunks.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        }
    };
    let (stored, ()) = tokio::join!(store_csv(&state.pool, tenant.id, spec, received), pump);
    if too_large.load(Ordering::Relaxed) {
        return Err(ApiError::too_large(limit as usize));
    }
    let accepted = stored?;
    state.relay_wake.notify_one();
    tracing::info!(import_id = %accepted.async_session_id, tenant_id = %tenant.id, rows = accepted.total_rows, "CSV import accepted");
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}
