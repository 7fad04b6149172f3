//! What the service says about an import (the 202 answer and `GET /api/v1/imports/{id}`), and
//! the one place that decides which final status makes the command succeed.

use serde::Deserialize;
use uuid::Uuid;

/// An import's state as the API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    Queued,
    Processing,
    Completed,
    CompletedWithErrors,
    Failed,
    Cancelled,
    /// A state this client does not know; treated as still running.
    #[serde(other)]
    Unknown,
}

/// How the command ends for a final state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0: every row has its result (some may have failed).
    Success,
    /// Non-zero exit status: the import as a whole did not go through.
    Failure,
}

impl State {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::CompletedWithErrors => "completedWithErrors",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }

    /// `None` while the import may still change; the command's outcome once it cannot.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            Self::Completed | Self::CompletedWithErrors => Some(Outcome::Success),
            Self::Failed | Self::Cancelled => Some(Outcome::Failure),
            Self::Queued | Self::Processing | Self::Unknown => None,
        }
    }
}

/// The `202 Accepted` answer to an upload.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub async_session_id: Uuid,
    #[serde(default)]
    pub total_rows: u64,
}

/// The body of `GET /api/v1/imports/{id}` (the fields this client uses).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportStatus {
    pub status: State,
    #[serde(default)]
    pub total_rows: u64,
    #[serde(default)]
    pub processed_rows: u64,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub updated: u64,
    #[serde(default)]
    pub skipped: u64,
    #[serde(default)]
    pub failed: u64,
}

impl ImportStatus {
    /// `12 created, 3 updated, 0 skipped, 1 failed`.
    pub fn counts(&self) -> String {
        format!(
            "{} created, {} updated, {} skipped, {} failed",
            self.created, self.updated, self.skipped, self.failed
        )
    }

    /// The one-line summary printed on stdout once the import is final.
    pub fn summary_line(&self, id: Uuid) -> String {
        format!(
            "import {id} {}: {} rows, {}",
            self.status.as_str(),
            self.total_rows,
            self.counts()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_completed_imports_make_the_command_succeed() {
        let cases = [
            (State::Queued, None),
            (State::Processing, None),
            (State::Unknown, None),
            (State::Completed, Some(Outcome::Success)),
            (State::CompletedWithErrors, Some(Outcome::Success)),
            (State::Failed, Some(Outcome::Failure)),
            (State::Cancelled, Some(Outcome::Failure)),
        ];
        for (state, outcome) in cases {
            assert_eq!(state.outcome(), outcome, "{state:?}");
        }
    }

    #[test]
    fn a_status_body_parses_and_an_unknown_state_is_not_final() {
        let body = r#"{"asyncSessionId": "0192f0c4-0000-7000-8000-000000000001", "source": "csv",
            "status": "completedWithErrors", "totalRows": 4, "processedRows": 4, "created": 2,
            "updated": 1, "skipped": 0, "failed": 1, "progress": 1.0}"#;
        let status: ImportStatus = serde_json::from_str(body).unwrap();
        assert_eq!(status.status, State::CompletedWithErrors);
        assert_eq!(status.processed_rows, 4);
        let later: ImportStatus = serde_json::from_str(r#"{"status": "paused"}"#).unwrap();
        assert_eq!(later.status.outcome(), None);
    }

    #[test]
    fn the_summary_names_the_import_its_state_and_every_count() {
        let status = ImportStatus {
            status: State::CompletedWithErrors,
            total_rows: 10,
            processed_rows: 10,
            created: 6,
            updated: 2,
            skipped: 1,
            failed: 1,
        };
        let id = Uuid::nil();
        assert_eq!(
            status.summary_line(id),
            format!(
                "import {id} completedWithErrors: 10 rows, 6 created, 2 updated, 1 skipped, 1 failed"
            )
        );
    }
}
