//! The states of imports, batches, rows and callbacks: Rust enums stored as `CHECK`ed text
//! (migrations), and the only place their spellings are written. The transitions are the
//! statements of `imports` (an import's counters and state), `batches` (held → pending → done
//! | dead) and `callbacks`; nothing outside `store` compares a state as a string.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// Declares a state enum with `as_str`, `parse`, `ALL`, serde and OpenAPI under the stored
/// name, and sqlx's mapping to `text`.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        // Every stored name is the variant's name in camelCase (the tests hold the two together).
        #[serde(rename_all = "camelCase")]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// Every state, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored and API name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// Reads the stored and API name (exact).
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for $name {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl Decode<'_, Postgres> for $name {
            fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
                let s = <&str as Decode<Postgres>>::decode(value)?;
                Self::parse(s).ok_or_else(|| {
                    format!(concat!("unknown ", stringify!($name), " {:?} in the database"), s).into()
                })
            }
        }
    };
}

text_enum! {
    /// The status of an import: `queued` → `processing` → `completed` | `completedWithErrors`
    /// | `failed`; `cancelled` from either of the first two.
    pub enum ImportState {
        Queued = "queued",
        Processing = "processing",
        Completed = "completed",
        CompletedWithErrors = "completedWithErrors",
        /// Every batch dead, all-or-nothing with a failed row, or an upload cut off.
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl ImportState {
    /// The states after which an import changes no more.
    pub const FINAL: [ImportState; 4] = [
        Self::Completed,
        Self::CompletedWithErrors,
        Self::Failed,
        Self::Cancelled,
    ];

    /// True once the import changes no more.
    pub fn is_final(self) -> bool {
        Self::FINAL.contains(&self)
    }
}

text_enum! {
    /// The state of a stored batch: `held` (its CSV file is still arriving) → `pending` (in the
    /// outbox until applied) → `done` | `dead`. A dead batch can be replayed back to `pending`.
    pub enum BatchState {
        Held = "held",
        Pending = "pending",
        Done = "done",
        Dead = "dead",
    }
}

text_enum! {
    /// A row's outcome.
    pub enum RowStatus {
        Created = "created",
        Updated = "updated",
        Skipped = "skipped",
        Failed = "failed",
        /// The row's contact was erased since: the row keeps its place and nothing else. An
        /// import counts it as skipped.
        Erased = "erased",
    }
}

text_enum! {
    /// The delivery of an import's completion callback.
    pub enum CallbackState {
        /// Not delivered yet (retries included).
        Pending = "pending",
        Delivered = "delivered",
        /// Given up after 24 hours.
        Failed = "failed",
    }
}

text_enum! {
    /// Where an import's rows came from.
    pub enum Source {
        Api = "api",
        Csv = "csv",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_its_own_name_and_serialises_as_it() {
        for state in ImportState::ALL {
            assert_eq!(ImportState::parse(state.as_str()), Some(*state));
            let json = serde_json::to_string(state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<ImportState>(&json).unwrap(), *state);
        }
        for state in BatchState::ALL {
            assert_eq!(BatchState::parse(state.as_str()), Some(*state));
        }
        for status in RowStatus::ALL {
            assert_eq!(RowStatus::parse(status.as_str()), Some(*status));
        }
        assert_eq!(ImportState::parse("Completed"), None);
        assert!(serde_json::from_str::<RowStatus>("\"done\"").is_err());
    }

    #[test]
    fn only_the_last_four_import_states_are_final() {
        let final_states: Vec<_> = ImportState::ALL
            .iter()
            .filter(|s| s.is_final())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            final_states,
            ["completed", "completedWithErrors", "failed", "cancelled"]
        );
    }
}
