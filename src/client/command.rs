//! The command line turned into what the client will do: the service's URL, the query string of
//! the upload (docs/api.md, "File imports"), and where the results go. All of it is checked here,
//! before a byte is sent, so a mistake never costs an upload.

use super::ImportArgs;
use anyhow::{Context, bail};
use reqwest::Url;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which rows the results file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultsKind {
    /// Every row (`results.csv`).
    All,
    /// Only the failed rows (`errors.csv`).
    ErrorsOnly,
}

impl ResultsKind {
    /// The endpoint under `/api/v1/imports/{id}/`, also the default file name's suffix.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::All => "results.csv",
            Self::ErrorsOnly => "errors.csv",
        }
    }
}

/// Everything one run of `contact-import import` needs, checked.
pub struct Plan {
    pub file: PathBuf,
    pub base: Url,
    pub api_key: String,
    pub query: Vec<(&'static str, String)>,
    pub idempotency_key: Option<String>,
    pub results: PathBuf,
    pub kind: ResultsKind,
    pub poll: Duration,
    /// The body's media type, by the file's extension: vCard, a workbook, else CSV.
    pub content_type: &'static str,
}

/// The media type of an `.xlsx` workbook.
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The media type of a file to upload, by its extension (any case): `.vcf`/`.vcard` is vCard,
/// `.xlsx` a workbook, anything else CSV.
pub fn content_type(file: &std::path::Path) -> &'static str {
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("vcf" | "vcard") => "text/vcard",
        Some("xlsx") => XLSX,
        _ => "text/csv",
    }
}

impl Plan {
    /// Checks the arguments and reads the mapping file, if any.
    pub fn from_args(args: ImportArgs) -> anyhow::Result<Plan> {
        let base = base_url(&args.url)?;
        if args.api_key.trim().is_empty() {
            bail!("the API key is empty: pass --api-key or set CONTACT_IMPORT_API_KEY");
        }
        let mapping = mapping(&args)?;
        let kind = if args.errors_only {
            ResultsKind::ErrorsOnly
        } else {
            ResultsKind::All
        };
        let results = args
            .results
            .clone()
            .unwrap_or_else(|| default_results_path(&args.file, kind));
        Ok(Plan {
            query: query_pairs(&args, mapping),
            base,
            api_key: args.api_key,
            idempotency_key: args.idempotency_key,
            results,
            kind,
            poll: Duration::from_millis(args.poll_ms),
            content_type: content_type(&args.file),
            file: args.file,
        })
    }

    /// The results must not overwrite the input, and their folder must exist.
    pub fn check_results_path(&self) -> anyhow::Result<()> {
        check_results_path(&self.file, &self.results)
    }

    /// `POST` target of the upload: `/api/v1/imports?identifier=…&…`.
    pub fn upload_url(&self) -> Url {
        let mut url = endpoint(&self.base, "api/v1/imports");
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        url
    }
}

/// `path` under the service's base URL (which may carry a path prefix of its own).
pub fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_path(&format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    ));
    url.set_query(None);
    url
}

/// The base URL without credentials, for messages.
pub fn shown(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url.as_str().trim_end_matches('/').to_owned()
}

fn base_url(raw: &str) -> anyhow::Result<Url> {
    let url = Url::parse(raw).with_context(|| format!("--url {raw:?} is not a URL"))?;
    match url.scheme() {
        "http" => Ok(url),
        "https" => bail!(
            "--url {raw}: https is not supported by this build (no TLS); use http:// or a TLS-terminating proxy on this host"
        ),
        other => bail!("--url {raw}: the scheme must be http, not {other}"),
    }
}

/// The options as query parameters, in a fixed order; only those given are sent, so the
/// service's defaults apply to the rest.
pub fn query_pairs(args: &ImportArgs, mapping: Option<String>) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    let mut push = |name: &'static str, value: Option<String>| {
        if let Some(value) = value {
            pairs.push((name, value));
        }
    };
    push("identifier", args.identifier.clone());
    push("mode", args.mode.clone());
    push("overwrite", args.no_overwrite.then(|| "false".to_owned()));
    push("defaultRegion", args.default_region.clone());
    push("mapping", mapping);
    push("tags", joined(&args.tags));
    push("groupNames", joined(&args.groups));
    push("importTag", args.no_import_tag.then(|| "false".to_owned()));
    push(
        "emptyCellsClear",
        args.empty_cells_clear.then(|| "true".to_owned()),
    );
    push("encoding", args.encoding.clone());
    push("dateFormat", args.date_format.clone());
    pairs
}

fn joined(values: &[String]) -> Option<String> {
    let values: Vec<&str> = values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The mapping from `--mapping` or `--mapping-file`, checked to be a JSON object and compacted.
fn mapping(args: &ImportArgs) -> anyhow::Result<Option<String>> {
    let (text, source) = match (&args.mapping, &args.mapping_file) {
        (Some(text), _) => (text.clone(), "--mapping".to_owned()),
        (None, Some(path)) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the mapping file {}", path.display()))?,
            format!("the mapping file {}", path.display()),
        ),
        (None, None) => return Ok(None),
    };
    compact_mapping(&text).map(Some).with_context(|| {
        format!("{source} must be a JSON object such as {{\"Phone number\": \"phone\"}}")
    })
}

fn compact_mapping(text: &str) -> anyhow::Result<String> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    if !value.is_object() {
        bail!("it is a JSON {}", kind_of(&value));
    }
    Ok(value.to_string())
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// `contacts.csv` → `contacts.results.csv` beside it; a name without `.csv` keeps its whole
/// name (`data` → `data.results.csv`). `errors.csv` instead of `results.csv` for errors only.
pub fn default_results_path(input: &Path, kind: ResultsKind) -> PathBuf {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".to_owned());
    let stem = match name.len().checked_sub(4) {
        Some(cut) if name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(".csv") => {
            &name[..cut]
        }
        _ => name.as_str(),
    };
    input.with_file_name(format!("{stem}.{}", kind.file_name()))
}

fn check_results_path(input: &Path, results: &Path) -> anyhow::Result<()> {
    if let (Ok(a), Ok(b)) = (input.canonicalize(), results.canonicalize())
        && a == b
    {
        bail!(
            "the results file {} is the input file; choose another --results",
            results.display()
        );
    }
    let folder = match results.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        bail!(
            "cannot write the results to {}: the folder {} does not exist",
            results.display(),
            folder.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ImportArgs,
    }

    fn args(extra: &[&str]) -> ImportArgs {
        let argv = ["import", "contacts.csv", "--api-key", "k"];
        Cli::try_parse_from(argv.iter().chain(extra)).unwrap().args
    }

    fn query(extra: &[&str]) -> String {
        let args = args(extra);
        let mapping = mapping(&args).unwrap();
        let pairs = query_pairs(&args, mapping);
        let plan_url = Url::parse("http://127.0.0.1:8080").unwrap();
        let mut url = endpoint(&plan_url, "api/v1/imports");
        url.query_pairs_mut().extend_pairs(&pairs);
        url.query().unwrap_or("").to_owned()
    }

    #[test]
    fn no_option_sends_no_parameter() {
        assert_eq!(query(&[]), "");
    }

    #[test]
    fn every_option_becomes_its_query_parameter() {
        let cases: &[(&[&str], &str)] = &[
            (&["--identifier", "externalId"], "identifier=externalId"),
            (&["--mode", "insertOnly"], "mode=insertOnly"),
            (&["--no-overwrite"], "overwrite=false"),
            (&["--default-region", "MA"], "defaultRegion=MA"),
            (&["--tag", "vip"], "tags=vip"),
            (
                &["--tag", "vip", "--tag", "new lead"],
                "tags=vip%2Cnew+lead",
            ),
            (&["--tag", "a,b", "--tag", "c"], "tags=a%2Cb%2Cc"),
            (
                &["--group", "Customers", "--group", "Ma"],
                "groupNames=Customers%2CMa",
            ),
            (&["--no-import-tag"], "importTag=false"),
            (&["--empty-cells-clear"], "emptyCellsClear=true"),
            (&["--encoding", "windows-1252"], "encoding=windows-1252"),
            (
                &["--date-format", "DD/MM/YYYY"],
                "dateFormat=DD%2FMM%2FYYYY",
            ),
            (
                &[
                    "--identifier",
                    "email",
                    "--mode",
                    "upsert",
                    "--no-overwrite",
                ],
                "identifier=email&mode=upsert&overwrite=false",
            ),
        ];
        for (flags, expected) in cases {
            assert_eq!(query(flags), *expected, "{flags:?}");
        }
    }

    #[test]
    fn the_media_type_follows_the_extension() {
        for (file, expected) in [
            ("contacts.csv", "text/csv"),
            ("contacts.CSV", "text/csv"),
            ("contacts", "text/csv"),
            ("phone.vcf", "text/vcard"),
            ("phone.VCard", "text/vcard"),
            ("book.xlsx", XLSX),
        ] {
            assert_eq!(content_type(std::path::Path::new(file)), expected, "{file}");
        }
    }

    #[test]
    fn the_mapping_is_sent_as_compact_url_encoded_json() {
        let q = query(&[
            "--mapping",
            r#"{ "Phone number": "phone", "Plan": "customAttributes.plan", "x": null }"#,
        ]);
        assert_eq!(
            q,
            "mapping=%7B%22Phone+number%22%3A%22phone%22%2C%22Plan%22%3A%22customAttributes.plan%22%2C%22x%22%3Anull%7D"
        );
        let decoded: Vec<(String, String)> = Url::parse(&format!("http://h/?{q}"))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        let sent: serde_json::Value = serde_json::from_str(&decoded[0].1).unwrap();
        assert_eq!(sent["Phone number"], "phone");
    }

    #[test]
    fn a_mapping_that_is_not_a_json_object_is_refused_before_any_upload() {
        for bad in ["[1]", "{not json", "\"phone\""] {
            let args = args(&["--mapping", bad]);
            let err = format!("{:#}", mapping(&args).unwrap_err());
            assert!(err.starts_with("--mapping must be a JSON object"), "{err}");
        }
    }

    #[test]
    fn the_mapping_file_is_read_and_a_missing_one_is_named() {
        let path = std::env::temp_dir().join(format!("mapping-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, r#"{"E-mail": "email"}"#).unwrap();
        let q = query(&["--mapping-file", path.to_str().unwrap()]);
        assert_eq!(q, "mapping=%7B%22E-mail%22%3A%22email%22%7D");
        std::fs::remove_file(&path).unwrap();
        let args = args(&["--mapping-file", path.to_str().unwrap()]);
        let err = format!("{:#}", mapping(&args).unwrap_err());
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn the_results_go_beside_the_input() {
        let cases = [
            ("contacts.csv", ResultsKind::All, "contacts.results.csv"),
            ("data", ResultsKind::All, "data.results.csv"),
            ("dir/Export.CSV", ResultsKind::All, "dir/Export.results.csv"),
            (
                "export.2024-01-01",
                ResultsKind::All,
                "export.2024-01-01.results.csv",
            ),
            ("/tmp/a.csv", ResultsKind::ErrorsOnly, "/tmp/a.errors.csv"),
            (".csv", ResultsKind::All, ".results.csv"),
        ];
        for (input, kind, expected) in cases {
            assert_eq!(
                default_results_path(Path::new(input), kind),
                PathBuf::from(expected),
                "{input}"
            );
        }
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(base_url("http://127.0.0.1:8080").is_ok());
        let https = base_url("https://contacts.example.com")
            .unwrap_err()
            .to_string();
        assert!(https.contains("no TLS"), "{https}");
        assert!(base_url("127.0.0.1:8080").is_err());
    }

    #[test]
    fn endpoints_keep_a_base_path_and_messages_hide_credentials() {
        let base = Url::parse("http://u:secret@h:9000/contacts/").unwrap();
        assert_eq!(
            endpoint(&base, "api/v1/imports").path(),
            "/contacts/api/v1/imports"
        );
        assert_eq!(shown(&base), "http://h:9000/contacts");
    }
}
