//! What an import asks for: its mode and options, as both intakes read them, stored with the
//! import and read back by every batch. Its states are `store::states`.

use crate::validate::{DateFormat, Identifier};
use serde::{Deserialize, Serialize};

/// How rows are matched to stored contacts and what happens on a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Update a match, create otherwise.
    Upsert,
    /// Create new contacts; a match ends `skipped` (`already_exists`).
    InsertOnly,
    /// Update matches; a row with no match ends `skipped` (`not_found`).
    UpdateOnly,
    /// Never match: every row creates a contact.
    CreateAll,
}

impl Mode {
    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "upsert" => Some(Self::Upsert),
            "insertOnly" => Some(Self::InsertOnly),
            "updateOnly" => Some(Self::UpdateOnly),
            "createAll" => Some(Self::CreateAll),
            _ => None,
        }
    }
}

/// The options an import's rows are applied with, stored with the import.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportOptions {
    pub dedupe_on: Identifier,
    pub mode: Mode,
    pub overwrite: bool,
    pub default_region: Option<String>,
    pub restore_deleted: bool,
    /// Every row gets the outcome it would get; nothing else changes.
    #[serde(default)]
    pub dry_run: bool,
    /// If any row fails, no row is applied (JSON intake; the import is one batch).
    #[serde(default)]
    pub all_or_nothing: bool,
    /// Added to every applied contact (a CSV import's own tag among them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Removed from every applied contact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags_remove: Vec<String>,
    /// Every applied contact joins these groups (created at intake).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_names: Vec<String>,
    /// Every applied contact leaves these groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_names_exclude: Vec<String>,
    /// One event with this routing key per contact the import creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_key_for_new_contacts: Option<String>,
    /// POSTed the final status (`callback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// A row may opt a channel a contact opted out of back in (`allowResubscribe`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_resubscribe: bool,
    /// How the rows write dates (`dateFormat`); ISO is always taken too.
    #[serde(default, skip_serializing_if = "is_iso")]
    pub date_format: DateFormat,
}

fn is_iso(format: &DateFormat) -> bool {
    *format == DateFormat::Iso
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            dedupe_on: Identifier::Phone,
            mode: Mode::Upsert,
            overwrite: true,
            default_region: None,
            restore_deleted: false,
            dry_run: false,
            all_or_nothing: false,
            tags: Vec::new(),
            tags_remove: Vec::new(),
            group_names: Vec::new(),
            group_names_exclude: Vec::new(),
            event_key_for_new_contacts: None,
            callback_url: None,
            date_format: DateFormat::Iso,
            allow_resubscribe: false,
        }
    }
}
