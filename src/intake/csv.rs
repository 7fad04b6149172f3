//! CSV files, the pure part: options, the delimiter, the mapping of header columns to contact
//! fields (explicit or automatic), and turning one record into the same flat JSON contact the
//! JSON intake takes — so that one validator and one worker serve both. No I/O here.

use super::FieldError;
use super::known_headers;
use super::options::{import_options, take_bool, take_str};
use crate::import::ImportOptions;
use crate::validate::{FieldKind, Identifier};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Contact fields a column can map to, by API name: the contact's own id, its plain members
/// (`CONTACT_FIELDS`), `tags`, and its statuses and consents.
pub fn fields() -> impl Iterator<Item = &'static str> {
    std::iter::once("id")
        .chain(crate::validate::CONTACT_FIELDS)
        .chain(["tags"])
        .chain(crate::validate::consent::FLAT_MEMBERS)
}

/// Other names a column may carry for a field.
const ALIASES: [(&str, &str); 6] = [
    ("primaryPhone", "phone"),
    ("primaryEmail", "email"),
    ("mobile", "phone"),
    ("phoneNumber", "phone"),
    ("emailAddress", "email"),
    ("postcode", "zip"),
];

/// The options of a CSV import.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    pub import: ImportOptions,
    pub mapping: Option<Map<String, Value>>,
    pub empty_cells_clear: bool,
    /// Tag every applied contact with `import-YYYYMMDD-<first 8 of the import id>`.
    pub import_tag: bool,
    /// The file's character encoding, when the client names it (else it is detected).
    pub encoding: Option<&'static encoding_rs::Encoding>,
}

/// Turns query parameters into the JSON shape of the `options` part.
pub fn options_from_query(
    params: &[(String, String)],
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut out = Map::new();
    let mut errors = Vec::new();
    for (name, raw) in params {
        let value = match name.as_str() {
            "overwrite" | "restoreDeleted" | "emptyCellsClear" | "importTag" | "dryRun"
            | "allOrNothing" | "allowResubscribe" => match raw.as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => {
                    errors.push(FieldError::new(
                        format!("/{name}"),
                        "invalid_value",
                        format!("{name} must be true or false"),
                    ));
                    continue;
                }
            },
            "mapping" => match serde_json::from_str(raw) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(FieldError::new(
                        "/mapping",
                        "invalid_value",
                        format!("mapping is not valid JSON: {e}"),
                    ));
                    continue;
                }
            },
            "tags" | "groupNames" | "tagsRemove" | "groupNamesExclude" => Value::Array(
                raw.split(',')
                    .map(|s| Value::String(s.trim().to_owned()))
                    .collect(),
            ),
            _ => Value::String(raw.clone()),
        };
        out.insert(name.clone(), value);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Checks the options of a CSV import (docs/api.md, "File imports").
pub fn parse_options(map: &Map<String, Value>) -> Result<CsvOptions, Vec<FieldError>> {
    let mut errors = Vec::new();
    let identifier = if map.contains_key("identifier") {
        "identifier"
    } else {
        "dedupeOn"
    };
    let import = import_options(map, identifier, &mut errors);
    let empty_cells_clear = take_bool(map, "emptyCellsClear", false, &mut errors);
    let import_tag = take_bool(map, "importTag", true, &mut errors);
    if take_bool(map, "allOrNothing", false, &mut errors) {
        errors.push(FieldError::new(
            "/allOrNothing",
            "invalid_value",
            "allOrNothing is an option of the JSON intake (POST /api/v1/contacts, up to 3000 contacts); a file is applied batch by batch: review it first with dryRun",
        ));
    }
    let encoding = match take_str(map, "encoding", &mut errors) {
        None => None,
        Some(label) => match super::encoding::parse_label(label) {
            Some(encoding) => Some(encoding),
            None => {
                errors.push(FieldError::new(
                    "/encoding",
                    "invalid_value",
                    format!(
                        "{label:?} is not an encoding label (utf-8, windows-1252, iso-8859-1, utf-16le, …); leave it out to have the encoding detected"
                    ),
                ));
                None
            }
        },
    };
    let mapping = match map.get("mapping") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => {
            errors.push(FieldError::new(
                "/mapping",
                "invalid_value",
                "mapping must be an object {\"CSV column\": \"field\"}",
            ));
            None
        }
    };
    if errors.is_empty() {
        Ok(CsvOptions {
            import,
            mapping,
            empty_cells_clear,
            import_tag,
            encoding,
        })
    } else {
        Err(errors)
    }
}

/// `,` or `;`, whichever the header line (outside quotes) has more of; `,` on a tie.
pub fn sniff_delimiter(first_line: &[u8]) -> u8 {
    let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
    for &b in first_line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            b'\n' if !quoted => break,
            _ => {}
        }
    }
    if semicolons > commas { b';' } else { b',' }
}

/// Lower case without spaces, `_`, `-` or `.`: `First Name`, `first_name` and `firstName` agree,
/// and so do `consent.sms` and `Consent SMS`.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Where a column's cells go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A contact field, by API name.
    Field(&'static str),
    /// A custom attribute, by field name.
    Attribute(String),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Field(f) => (*f).to_owned(),
            Target::Attribute(a) => format!("customAttributes.{a}"),
        }
    }
}

fn field_named(name: &str) -> Option<&'static str> {
    let n = normalise(name);
    fields().find(|f| normalise(f) == n).or_else(|| {
        ALIASES
            .into_iter()
            .find(|(alias, _)| normalise(alias) == n)
            .map(|(_, f)| f)
    })
}

fn pointer_escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Where an automatically mapped column ranks among the columns of its field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Rank {
    /// The field's own name, an alias, or an explicit mapping: before every known column.
    Named,
    /// A known export's column: its place in `known_headers::RANKED`.
    Known(usize),
    /// An address column: its block in `known_headers::ADDRESS_BLOCKS`, and its place there.
    Address(usize, usize),
}

/// The field a column's header names automatically, and its rank.
fn automatic(header: &str) -> Option<(&'static str, Rank)> {
    let n = normalise(header);
    for (block, columns) in known_headers::ADDRESS_BLOCKS.iter().enumerate() {
        if let Some(at) = columns.iter().position(|(_, c)| normalise(c) == n) {
            return Some((columns[at].0, Rank::Address(block, at)));
        }
    }
    if let Some(at) = known_headers::RANKED
        .iter()
        .position(|(_, c)| normalise(c) == n)
    {
        let field = known_headers::RANKED[at].0;
        return fields().find(|f| *f == field).map(|f| (f, Rank::Known(at)));
    }
    field_named(header).map(|field| {
        let rank = match known_headers::ADDRESS_FIELDS.contains(&field) {
            true => Rank::Address(0, 0),
            false => Rank::Named,
        };
        (field, rank)
    })
}

/// How the columns of a file map to contact fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMap {
    /// Where each column goes.
    pub targets: Vec<Option<Target>>,
    /// Each target but the address fields of known blocks, with its columns best first: a row
    /// takes the first cell it has a value in.
    feeds: Vec<(Target, Vec<usize>)>,
    /// Address blocks, best first, each with its `(field, column)`s best first: a row's
    /// address fields all come from the first block it has a value in.
    blocks: Vec<Vec<(&'static str, usize)>>,
}

/// Resolves the mapping against the header: explicit (`mapping`) or automatic. 422 items for
/// a mapping naming a column or field that does not exist, two columns on one field, or the
/// identifier left unmapped.
pub fn resolve_columns(
    header: &[String],
    mapping: Option<&Map<String, Value>>,
    fields: &HashMap<String, FieldKind>,
    identifier: Identifier,
) -> Result<ColumnMap, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut targets: Vec<Option<Target>> = vec![None; header.len()];
    let mut ranks: Vec<Rank> = vec![Rank::Named; header.len()];
    match mapping {
        Some(mapping) => {
            for (column, target) in mapping {
                let pointer = format!("/mapping/{}", pointer_escape(column));
                let Some(index) = header.iter().position(|h| h == column) else {
                    errors.push(FieldError::new(
                        pointer,
                        "unknown_column",
                        format!("the file has no column {column:?}"),
                    ));
                    continue;
                };
                let target = match target {
                    Value::Null => continue,
                    Value::String(t) if t.is_empty() => continue,
                    Value::String(t) => t,
                    _ => {
                        errors.push(FieldError::new(
                            pointer,
                            "invalid_value",
                            "a mapping target is a field name, or null to skip the column",
                        ));
                        continue;
                    }
                };
                let resolved = match target.strip_prefix("customAttributes.") {
                    Some(name) if fields.contains_key(name) => {
                        Some(Target::Attribute(name.to_owned()))
                    }
                    Some(_) => None,
                    None => field_named(target).map(Target::Field),
                };
                match resolved {
                    Some(t) => targets[index] = Some(t),
                    None => errors.push(FieldError::new(pointer, "unknown_field", format!("{target:?} is not a contact field or a custom field of this tenant (custom fields are written customAttributes.NAME)"))),
                }
            }
        }
        None => {
            for (index, column) in header.iter().enumerate() {
                let n = normalise(column);
                targets[index] = automatic(column).map(|(field, rank)| {
                    ranks[index] = rank;
                    Target::Field(field)
                });
                if targets[index].is_none() {
                    targets[index] = fields
                        .keys()
                        .find(|name| normalise(name) == n)
                        .map(|name| Target::Attribute(name.clone()));
                }
            }
            let has = |name: &str| header.iter().any(|h| normalise(h) == normalise(name));
            for (column, unless) in known_headers::SHADOWED {
                if has(unless) {
                    for (index, h) in header.iter().enumerate() {
                        if normalise(h) == normalise(column) {
                            targets[index] = None;
                        }
                    }
                }
            }
        }
    }
    // Columns of one target at one rank are ambiguous; at different ranks, the better one
    // is taken first.
    let mut seen: HashMap<(&Target, Rank), usize> = HashMap::new();
    for (index, target) in targets.iter().enumerate() {
        let Some(target) = target else { continue };
        if let Some(first) = seen.insert((target, ranks[index]), index) {
            errors.push(FieldError::new(
                format!("/mapping/{}", pointer_escape(&header[index])),
                "duplicate_mapping",
                format!(
                    "columns {:?} and {:?} both map to {}",
                    header[first],
                    header[index],
                    target.describe()
                ),
            ));
        }
    }
    if errors.is_empty() && !targets.contains(&Some(Target::Field(identifier.as_str()))) {
        errors.push(FieldError::new(
            "/mapping",
            "identifier_not_mapped",
            format!("no column maps to {}, the identifier of this import; name a column {:?} or map one to it", identifier.as_str(), identifier.as_str()),
        ));
    }
    if errors.is_empty() {
        Ok(ColumnMap::new(targets, &ranks))
    } else {
        Err(errors)
    }
}

impl ColumnMap {
    fn new(targets: Vec<Option<Target>>, ranks: &[Rank]) -> Self {
        let mut order: Vec<usize> = (0..targets.len())
            .filter(|&i| targets[i].is_some())
            .collect();
        order.sort_by_key(|&i| (ranks[i], i));
        let mut feeds: Vec<(Target, Vec<usize>)> = Vec::new();
        let mut blocks: Vec<(usize, Vec<(&'static str, usize)>)> = Vec::new();
        for index in order {
            let Some(target) = &targets[index] else {
                continue;
            };
            match (target, ranks[index]) {
                (Target::Field(field), Rank::Address(block, _)) => {
                    match blocks.iter_mut().find(|(b, _)| *b == block) {
                        Some((_, columns)) => columns.push((field, index)),
                        None => blocks.push((block, vec![(field, index)])),
                    }
                }
                _ => match feeds.iter_mut().find(|(t, _)| t == target) {
                    Some((_, columns)) => columns.push(index),
                    None => feeds.push((target.clone(), vec![index])),
                },
            }
        }
        Self {
            targets,
            feeds,
            blocks: blocks.into_iter().map(|(_, columns)| columns).collect(),
        }
    }

    /// Turns one record's cells into a flat contact. An empty cell leaves its field as it is
    /// (absent), or clears it with `emptyCellsClear`. A `tags` cell is a list, split on `,`
    /// and `;` (Mailchimp quotes each tag: `"VIP","Blog"`).
    pub fn contact(&self, cells: &[&str], empty_cells_clear: bool) -> Value {
        let cell = |index: usize| {
            cells
                .get(index)
                .map(|c| c.trim())
                .filter(|c| !c.is_empty())
                .map(|_| unescape_formula(cells[index]))
        };
        let mut contact = Map::new();
        let mut attributes = Map::new();
        let mut consent = Map::new();
        let mut put = |target: &Target, value: Option<&str>| {
            let value = match value {
                Some(text) if *target == Target::Field("tags") => tag_list(text),
                Some(text) if matches!(target, Target::Field("phone" | "email")) => {
                    let first = text.split(known_headers::GOOGLE_SEPARATOR).next();
                    Value::String(first.unwrap_or(text).to_owned())
                }
                Some(text) => Value::String(text.to_owned()),
                None if empty_cells_clear => Value::Null,
                None => return,
            };
            match target {
                Target::Field(f) => match f.strip_prefix("consent.") {
                    Some(channel) => consent.insert(channel.to_owned(), value),
                    None => contact.insert((*f).to_owned(), value),
                },
                Target::Attribute(a) => attributes.insert(a.clone(), value),
            };
        };
        for (target, columns) in &self.feeds {
            put(target, columns.iter().find_map(|&i| cell(i)));
        }
        if !self.blocks.is_empty() {
            let chosen = self
                .blocks
                .iter()
                .find(|block| block.iter().any(|&(_, i)| cell(i).is_some()));
            for field in known_headers::ADDRESS_FIELDS {
                let fed = self.blocks.iter().flatten().any(|(f, _)| *f == field);
                if !fed {
                    continue;
                }
                let value = chosen.and_then(|block| {
                    block
                        .iter()
                        .filter(|(f, _)| *f == field)
                        .find_map(|&(_, i)| cell(i))
                });
                put(&Target::Field(field), value);
            }
        }
        if !attributes.is_empty() {
            contact.insert("customAttributes".into(), Value::Object(attributes));
        }
        if !consent.is_empty() {
            contact.insert("consent".into(), Value::Object(consent));
        }
        Value::Object(contact)
    }
}

/// A cell as it was before an export escaped it as a formula: `'=…`, `'+…`, `'-…`, `'@…`
/// lose their `'`, so that an exported file imports back as what was exported.
fn unescape_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

/// A cell of tags as a list: split on `,` and `;`, each trimmed and unquoted, empty ones left
/// out.
fn tag_list(cell: &str) -> Value {
    Value::Array(
        cell.split([',', ';'])
            .map(|t| t.trim().trim_matches('"').trim())
            .filter(|t| !t.is_empty())
            .map(|t| Value::String(t.to_owned()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|c| (*c).to_owned()).collect()
    }

    fn fields() -> HashMap<String, FieldKind> {
        HashMap::from([("account_balance".to_owned(), FieldKind::Number)])
    }

    #[test]
    fn the_delimiter_is_sniffed_from_the_header_outside_quotes() {
        let cases: [(&[u8], u8); 5] = [
            (b"phone,email,first_name\n", b','),
            (b"phone;email;first_name\r\n", b';'),
            (b"\"a;b;c\",d\n", b','),
            (b"phone\n", b','),
            (b"a;b,c;d\nx,y,z,w,v", b';'),
        ];
        for (line, expected) in cases {
            assert_eq!(
                sniff_delimiter(line) as char,
                expected as char,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn headers_map_automatically_ignoring_case_spaces_and_separators() {
        let h = header(&[
            "First Name",
            "last_name",
            "PHONE",
            "e-mail",
            "Account Balance",
            "notes",
        ]);
        let map = resolve_columns(&h, None, &fields(), Identifier::Phone).unwrap();
        assert_eq!(
            map.targets,
            [
                Some(Target::Field("firstName")),
                Some(Target::Field("lastName")),
                Some(Target::Field("phone")),
                Some(Target::Field("email")),
                Some(Target::Attribute("account_balance".into())),
                None
            ]
        );
    }

    #[test]
    fn an_explicit_mapping_wins_and_can_skip_columns() {
        let h = header(&["Mobile", "Name", "Balance", "Junk"]);
        let mapping = json!({"Mobile": "phone", "Name": "firstName", "Balance": "customAttributes.account_balance", "Junk": null});
        let map = resolve_columns(&h, mapping.as_object(), &fields(), Identifier::Phone).unwrap();
        assert_eq!(
            map.targets,
            [
                Some(Target::Field("phone")),
                Some(Target::Field("firstName")),
                Some(Target::Attribute("account_balance".into())),
                None
            ]
        );
    }

    #[test]
    fn bad_mappings_are_refused_with_pointers() {
        let h = header(&["Mobile", "Name", "Other"]);
        let cases = [
            (
                json!({"Mobile": "phone", "Nope": "email"}),
                "/mapping/Nope",
                "unknown_column",
            ),
            (
                json!({"Mobile": "phone", "Name": "nickname"}),
                "/mapping/Name",
                "unknown_field",
            ),
            (
                json!({"Mobile": "phone", "Name": "customAttributes.unknown"}),
                "/mapping/Name",
                "unknown_field",
            ),
            (
                json!({"Mobile": "phone", "Name": "firstName", "Other": "firstName"}),
                "/mapping/Other",
                "duplicate_mapping",
            ),
            (
                json!({"Name": "firstName"}),
                "/mapping",
                "identifier_not_mapped",
            ),
        ];
        for (mapping, pointer, code) in cases {
            let errors =
                resolve_columns(&h, mapping.as_object(), &fields(), Identifier::Phone).unwrap_err();
            assert!(
                errors
                    .iter()
                    .any(|e| e.pointer == pointer && e.code == code),
                "{mapping}: {errors:?}"
            );
        }
        let errors = resolve_columns(
            &header(&["email", "name"]),
            None,
            &fields(),
            Identifier::Phone,
        )
        .unwrap_err();
        assert_eq!(errors[0].code, "identifier_not_mapped");
        let errors = resolve_columns(
            &header(&["Phone", "phone"]),
            None,
            &fields(),
            Identifier::Phone,
        )
        .unwrap_err();
        assert_eq!(errors[0].code, "duplicate_mapping");
    }

    #[test]
    fn records_become_flat_contacts_and_empty_cells_are_absent_unless_cleared() {
        let h = header(&["phone", "first_name", "account_balance", "city"]);
        let map = resolve_columns(&h, None, &fields(), Identifier::Phone).unwrap();
        let cells = ["+212612345678", "Amina", "12.5", ""];
        assert_eq!(
            map.contact(&cells, false),
            json!({"phone": "+212612345678", "firstName": "Amina", "customAttributes": {"account_balance": "12.5"}})
        );
        assert_eq!(map.contact(&cells, true)["city"], Value::Null);
        // A short (ragged) record maps what it has.
        assert_eq!(
            map.contact(&["+212612345678"], false),
            json!({"phone": "+212612345678"})
        );
    }

    #[test]
    fn known_exports_map_without_a_mapping_and_each_row_takes_its_best_column() {
        // Outlook: a row with no mobile number takes its home phone; the home address block
        // wins when the row has one, else the business block — whole, never mixed.
        let h = header(&[
            "First Name",
            "Last Name",
            "Title",
            "Job Title",
            "E-mail Address",
            "Mobile Phone",
            "Home Phone",
            "Business Phone",
            "Home Street",
            "Home City",
            "Business Street",
            "Business City",
            "Business Postal Code",
            "Categories",
        ]);
        let map = resolve_columns(&h, None, &fields(), Identifier::Phone).unwrap();
        let row = |cells: &[&str]| map.contact(cells, false);
        let both = row(&[
            "Ana",
            "Silva",
            "Dr.",
            "Nurse",
            "ana@example.com",
            "",
            "+212522000001",
            "+212522000002",
            "",
            "Rabat",
            "1 Main St",
            "Casablanca",
            "20000",
            "VIP;Friends",
        ]);
        assert_eq!(
            both,
            json!({"firstName": "Ana", "lastName": "Silva", "occupation": "Nurse",
                   "email": "ana@example.com", "phone": "+212522000001",
                   "city": "Rabat", "tags": ["VIP", "Friends"]})
        );
        let business = row(&[
            "Ben",
            "",
            "",
            "",
            "",
            "+212612000003",
            "",
            "",
            "",
            "",
            "1 Main St",
            "Casablanca",
            "20000",
            "",
        ]);
        assert_eq!(
            business,
            json!({"firstName": "Ben", "phone": "+212612000003", "address": "1 Main St",
                   "city": "Casablanca", "zip": "20000"})
        );
        assert_eq!(map.contact(&["Cy"; 1], true)["address"], Value::Null);
        let mr = row(&[
            "Cy",
            "",
            "Mr.",
            "",
            "",
            "+212612000006",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]);
        assert_eq!(
            mr.get("occupation"),
            None,
            "Outlook's Title is not a job: {mr}"
        );
        // Salesforce's Title is the job: its files have no Job Title.
        let h = header(&["Contact ID", "Title", "Mobile", "Phone"]);
        let map = resolve_columns(&h, None, &fields(), Identifier::Phone).unwrap();
        assert_eq!(
            map.contact(&["003A", "CTO", "", "+212522000007"], false),
            json!({"externalId": "003A", "occupation": "CTO", "phone": "+212522000007"})
        );

        // Mailchimp: quoted tags; Google: numbered columns; HubSpot: State/Region.
        let h = header(&["Email Address", "First Name", "TAGS", "Birthday"]);
        let map = resolve_columns(&h, None, &fields(), Identifier::Email).unwrap();
        assert_eq!(
            map.contact(&["a@example.com", "A", "\"VIP\",\"Blog\"", "07/21"], false),
            json!({"email": "a@example.com", "firstName": "A", "tags": ["VIP", "Blog"], "birthday": "07/21"})
        );
        let h = header(&[
            "Name",
            "Given Name",
            "Phone 1 - Value",
            "Phone 2 - Value",
            "E-mail 1 - Value",
        ]);
        let map = resolve_columns(&h, None, &fields(), Identifier::Phone).unwrap();
        assert_eq!(
            map.contact(
                &["Ana Silva", "Ana", "", "+212612000004", "ana@example.com"],
                false
            ),
            json!({"fullName": "Ana Silva", "firstName": "Ana", "phone": "+212612000004", "email": "ana@example.com"})
        );
        let h = header(&[
            "Record ID",
            "Phone Number",
            "Street Address",
            "City",
            "State/Region",
            "Postal Code",
        ]);
        let map = resolve_columns(&h, None, &fields(), Identifier::ExternalId).unwrap();
        assert_eq!(
            map.contact(
                &[
                    "901",
                    "+212612000005",
                    "2 Rue X",
                    "Fès",
                    "Fès-Meknès",
                    "30000"
                ],
                false
            ),
            json!({"externalId": "901", "phone": "+212612000005", "address": "2 Rue X",
                   "city": "Fès", "state": "Fès-Meknès", "zip": "30000"})
        );
    }

    #[test]
    fn options_come_from_query_parameters_or_json() {
        let params = [
            ("identifier".to_owned(), "email".to_owned()),
            ("overwrite".to_owned(), "false".to_owned()),
            ("mapping".to_owned(), "{\"E-mail\":\"email\"}".to_owned()),
            ("defaultRegion".to_owned(), "ma".to_owned()),
        ];
        let options = parse_options(&options_from_query(&params).unwrap()).unwrap();
        assert_eq!(options.import.dedupe_on, Identifier::Email);
        assert!(!options.import.overwrite);
        assert_eq!(options.import.default_region.as_deref(), Some("MA"));
        assert_eq!(options.mapping.unwrap()["E-mail"], "email");
        let bad = [("overwrite".to_owned(), "maybe".to_owned())];
        assert_eq!(
            options_from_query(&bad).unwrap_err()[0].pointer,
            "/overwrite"
        );
        let errors = parse_options(
            json!({"mode": "merge", "identifier": "fax"})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 2);
    }
}
