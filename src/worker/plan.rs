//! Deciding what a batch does, without I/O: given the validated rows and the stored contacts
//! that hold any of their identifiers (already locked), say which contacts to insert, which
//! to update, and each row's outcome. Pure, so every rule of modes, `overwrite`, soft
//! deletes and identifier conflicts is unit-tested here.

use crate::import::{ImportOptions, Mode};
use crate::store::RowStatus;
use crate::store::contacts::StoredContact;
use crate::validate::consent::{Consent, ConsentStatus, Reach};
use crate::validate::{ErrorCode, Identifier, Patch, RowIssue, ValidContact};
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// One row of the batch after validation.
#[derive(Clone)]
pub struct RowInput {
    /// Position of the row in the import.
    pub index: i32,
    pub parsed: Result<ValidContact, Vec<RowIssue>>,
    /// Another row of the same import has the same identifier.
    pub duplicate: bool,
    /// The row's contact was erased before the row was applied: it is applied to nothing.
    pub erased: bool,
}

/// Where and when rows are applied: what a consent they set records as its source and time,
/// unless the row says.
pub struct Applying {
    /// `import:<asyncSessionId>`, or `api` for a single contact.
    pub source: String,
    pub now: OffsetDateTime,
}

/// A row's result, as stored in `row_results`.
#[derive(Debug, PartialEq)]
pub struct RowOutcome {
    pub index: i32,
    pub status: RowStatus,
    pub contact_id: Option<Uuid>,
    pub errors: Vec<RowIssue>,
    pub warnings: Vec<RowIssue>,
}

/// What a batch writes.
#[derive(Debug, Default)]
pub struct Plan {
    pub inserts: Vec<StoredContact>,
    pub updates: Vec<StoredContact>,
    /// Updated contacts that were soft-deleted and are live again (`restoreDeleted`).
    pub restored: Vec<Uuid>,
    pub outcomes: Vec<RowOutcome>,
}

impl Plan {
    /// `dryRun`: the same outcomes, and no contact written. A contact it would create does not
    /// exist, so its row has no `contactId`.
    pub fn dry_run(mut self) -> Plan {
        self.forget_writes();
        self
    }

    /// The contacts the batch applies a row to (created or updated): they join and leave the
    /// request's groups.
    pub fn applied(&self) -> Vec<Uuid> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.status, RowStatus::Created | RowStatus::Updated))
            .filter_map(|o| o.contact_id)
            .collect()
    }

    /// The contacts the batch creates.
    pub fn created(&self) -> Vec<Uuid> {
        self.outcomes
            .iter()
            .filter(|o| o.status == RowStatus::Created)
            .filter_map(|o| o.contact_id)
            .collect()
    }

    /// How many rows failed.
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.status == RowStatus::Failed)
            .count()
    }

    /// `allOrNothing` with a failed row: nothing is written; the failed rows keep their
    /// errors and every other row is skipped with the warning `not_applied`.
    pub fn not_applied(mut self) -> Plan {
        let failed = self.failed();
        self.forget_writes();
        for outcome in &mut self.outcomes {
            if outcome.status != RowStatus::Failed {
                outcome.status = RowStatus::Skipped;
                outcome.warnings.push(RowIssue::new(
                    "",
                    ErrorCode::NotApplied,
                    format!("not applied: allOrNothing, and {failed} row(s) of the request failed"),
                ));
            }
        }
        self
    }

    fn forget_writes(&mut self) {
        let created: std::collections::HashSet<Uuid> =
            self.inserts.drain(..).map(|c| c.id).collect();
        self.updates.clear();
        self.restored.clear();
        for outcome in &mut self.outcomes {
            if outcome.contact_id.is_some_and(|id| created.contains(&id)) {
                outcome.contact_id = None;
            }
        }
    }
}

/// The contacts a batch works on: the locked stored ones first, then the ones it creates;
/// and which contact holds each identifier value, as the batch changes them.
struct WorkingSet {
    contacts: Vec<StoredContact>,
    /// The stored contacts as they were read: an update that changes nothing is not written.
    original: Vec<StoredContact>,
    existing: usize,
    touched: Vec<bool>,
    owners: HashMap<(Identifier, String), usize>,
}

impl WorkingSet {
    fn new(existing: Vec<StoredContact>) -> Self {
        let mut owners = HashMap::new();
        for (i, c) in existing.iter().enumerate() {
            for kind in Identifier::ALL {
                if let Some(v) = c.identifier(kind) {
                    owners.insert((kind, v.to_owned()), i);
                }
            }
        }
        let n = existing.len();
        Self {
            original: existing.clone(),
            contacts: existing,
            existing: n,
            touched: vec![false; n],
            owners,
        }
    }

    /// The contact with this id, among those locked.
    fn with_id(&self, id: Uuid) -> Option<usize> {
        self.contacts.iter().position(|c| c.id == id)
    }

    fn holder(&self, kind: Identifier, value: &str) -> Option<usize> {
        self.owners.get(&(kind, value.to_owned())).copied()
    }

    /// The first identifier of `candidate` that a contact other than `slot` holds.
    fn conflict(&self, candidate: &StoredContact, slot: Option<usize>) -> Option<RowIssue> {
        Identifier::ALL.into_iter().find_map(|kind| {
            let value = candidate.identifier(kind)?;
            let holder = self.holder(kind, value)?;
            (Some(holder) != slot).then(|| {
                RowIssue::new(
                    kind.as_str(),
                    ErrorCode::IdentifierConflict,
                    format!(
                        "{} {value} already belongs to another contact ({})",
                        kind.as_str(),
                        self.contacts[holder].id
                    ),
                )
            })
        })
    }

    /// Puts `candidate` in `slot` (or a new slot) and moves identifier ownership with it.
    fn put(&mut self, slot: Option<usize>, candidate: StoredContact) -> usize {
        let slot = match slot {
            Some(i) => {
                for kind in Identifier::ALL {
                    if let Some(old) = self.contacts[i].identifier(kind) {
                        self.owners.remove(&(kind, old.to_owned()));
                    }
                }
                self.contacts[i] = candidate;
                i
            }
            None => {
                self.contacts.push(candidate);
                self.touched.push(false);
                self.contacts.len() - 1
            }
        };
        for kind in Identifier::ALL {
            if let Some(v) = self.contacts[slot].identifier(kind) {
                self.owners.insert((kind, v.to_owned()), slot);
            }
        }
        self.touched[slot] = true;
        slot
    }
}

fn merge<T: Clone>(slot: &mut Option<T>, patch: &Patch<T>, overwrite: bool) {
    match patch {
        Patch::Set(v) if overwrite || slot.is_none() => *slot = Some(v.clone()),
        Patch::Clear if overwrite => *slot = None,
        _ => {}
    }
}

fn merge_as<T, U>(slot: &mut Option<U>, patch: &Patch<T>, overwrite: bool, f: impl Fn(&T) -> U) {
    let mapped = match patch {
        Patch::Absent => Patch::Absent,
        Patch::Clear => Patch::Clear,
        Patch::Set(v) => Patch::Set(f(v)),
    };
    match mapped {
        Patch::Set(v) if overwrite || slot.is_none() => *slot = Some(v),
        Patch::Clear if overwrite => *slot = None,
        _ => {}
    }
}

/// Applies a row to a contact: `overwrite` replaces and clears; without it only empty
/// fields are filled. Custom attributes merge by name.
pub fn apply(c: &mut StoredContact, v: &ValidContact, overwrite: bool) {
    merge_as(&mut c.external_id, &v.external_id, overwrite, |x| {
        x.as_str().to_owned()
    });
    merge_as(&mut c.phone, &v.phone, overwrite, |x| x.as_str().to_owned());
    merge_as(&mut c.email, &v.email, overwrite, |x| x.as_str().to_owned());
    merge(&mut c.first_name, &v.first_name, overwrite);
    merge(&mut c.last_name, &v.last_name, overwrite);
    merge(&mut c.full_name, &v.full_name, overwrite);
    merge(&mut c.occupation, &v.occupation, overwrite);
    merge(&mut c.preferred_channel, &v.preferred_channel, overwrite);
    merge_as(&mut c.gender, &v.gender, overwrite, |g| {
        g.as_str().to_owned()
    });
    merge(&mut c.birthday, &v.birthday, overwrite);
    merge(&mut c.address, &v.address, overwrite);
    merge(&mut c.city, &v.city, overwrite);
    merge(&mut c.state, &v.state, overwrite);
    merge(&mut c.zip, &v.zip, overwrite);
    for (name, patch) in &v.custom_attributes {
        let present = c.custom_attributes.get(name).is_some_and(|x| !x.is_null());
        match patch {
            Patch::Set(value) if overwrite || !present => {
                c.custom_attributes.insert(name.clone(), value.clone());
            }
            Patch::Clear if overwrite => {
                c.custom_attributes.remove(name);
            }
            _ => {}
        }
    }
}

/// A contact's tags after a row: its own `tags` replace the set with `overwrite` (`null`
/// clears it) and are only added without; then the request's `tags` are added and its
/// `tagsRemove` removed.
pub fn apply_tags(tags: &mut Vec<String>, own: &Patch<Vec<String>>, options: &ImportOptions) {
    match own {
        Patch::Set(list) if options.overwrite => tags.clone_from(list),
        Patch::Clear if options.overwrite => tags.clear(),
        Patch::Set(list) => add_tags(tags, list),
        _ => {}
    }
    add_tags(tags, &options.tags);
    tags.retain(|t| !options.tags_remove.contains(t));
}

/// Applies a row's consents and statuses. An opt-out is sticky: a row that would opt a stored
/// `optedOut` channel back in (or clear it) keeps the opt-out, with the warning `consent_kept`
/// in `kept`, unless the import allows resubscribing. Without `overwrite` a stored consent never
/// changes. A consent the row sets to what is stored keeps its time and source, so that an
/// import run twice changes nothing. An address that changes is active again, unless the row
/// sets its status.
fn apply_consent(
    c: &mut StoredContact,
    before: Option<&StoredContact>,
    v: &ValidContact,
    options: &ImportOptions,
    applying: &Applying,
    kept: &mut Vec<RowIssue>,
) {
    for (channel, patch) in &v.consent {
        let stored = c.consent.get(channel);
        if stored.is_some() && !options.overwrite {
            continue;
        }
        let opted_out = stored.is_some_and(|s| s.status == ConsentStatus::OptedOut);
        let opts_back_in = match patch {
            Patch::Set(set) => set.status == ConsentStatus::OptedIn,
            Patch::Clear => true,
            Patch::Absent => false,
        };
        if opted_out && opts_back_in && !options.allow_resubscribe {
            kept.push(RowIssue::new(
                format!("consent.{}", channel.as_str()),
                ErrorCode::ConsentKept,
                format!(
                    "the contact opted out of {} and stays opted out; send allowResubscribe: true to opt them back in",
                    channel.as_str()
                ),
            ));
            continue;
        }
        match patch {
            Patch::Set(set) => {
                let unchanged = stored.is_some_and(|s| s.status == set.status)
                    && set.at.is_none()
                    && set.source.is_none();
                if !unchanged {
                    c.consent.insert(
                        *channel,
                        Consent {
                            status: set.status,
                            updated_at: set.at.unwrap_or(applying.now),
                            source: set
                                .source
                                .clone()
                                .unwrap_or_else(|| applying.source.clone()),
                        },
                    );
                }
            }
            Patch::Clear => {
                c.consent.remove(channel);
            }
            Patch::Absent => {}
        }
    }
    let reach = |slot: &mut String, patch: &Patch<Reach>, address_changed: bool| match patch {
        Patch::Set(r) if options.overwrite || *slot == Reach::Active.as_str() => {
            *slot = r.as_str().to_owned()
        }
        Patch::Clear if options.overwrite => *slot = Reach::Active.as_str().to_owned(),
        Patch::Absent if address_changed => *slot = Reach::Active.as_str().to_owned(),
        _ => {}
    };
    let email_changed = before.is_some_and(|b| b.email != c.email);
    let phone_changed = before.is_some_and(|b| b.phone != c.phone);
    reach(&mut c.status, &v.status, false);
    reach(&mut c.email_status, &v.email_status, email_changed);
    reach(&mut c.phone_status, &v.phone_status, phone_changed);
}

fn add_tags(tags: &mut Vec<String>, more: &[String]) {
    for tag in more {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
}

fn outcome(index: i32, status: RowStatus, contact_id: Option<Uuid>) -> RowOutcome {
    RowOutcome {
        index,
        status,
        contact_id,
        errors: Vec::new(),
        warnings: Vec::new(),
    }
}

fn failed(index: i32, errors: Vec<RowIssue>) -> RowOutcome {
    RowOutcome {
        errors,
        ..outcome(index, RowStatus::Failed, None)
    }
}

fn skipped(index: i32, contact_id: Option<Uuid>, warning: RowIssue) -> RowOutcome {
    RowOutcome {
        warnings: vec![warning],
        ..outcome(index, RowStatus::Skipped, contact_id)
    }
}

/// Plans a batch. `existing` holds every stored contact of the tenant with one of the rows'
/// identifiers; `new_id` names created contacts.
pub fn plan(
    rows: Vec<RowInput>,
    existing: Vec<StoredContact>,
    options: &ImportOptions,
    applying: &Applying,
    mut new_id: impl FnMut() -> Uuid,
) -> Plan {
    let key_kind = options.dedupe_on;
    let mut set = WorkingSet::new(existing);
    let mut outcomes = Vec::with_capacity(rows.len());
    for row in rows {
        if row.erased {
            outcomes.push(outcome(row.index, RowStatus::Erased, None));
            continue;
        }
        let contact = match row.parsed {
            Err(errors) => {
                outcomes.push(failed(row.index, errors));
                continue;
            }
            Ok(contact) => contact,
        };
        let Some(key) = contact.dedupe_key(options.dedupe_on) else {
            outcomes.push(failed(
                row.index,
                vec![RowIssue::new(
                    key_kind.as_str(),
                    ErrorCode::MissingIdentifier,
                    format!("dedupeOn is {} but the row has none", key_kind.as_str()),
                )],
            ));
            continue;
        };
        if row.duplicate {
            outcomes.push(failed(
                row.index,
                vec![RowIssue::new(
                    key_kind.as_str(),
                    ErrorCode::DuplicateInFile,
                    format!(
                        "another row of this import has the same {} {key}",
                        key_kind.as_str()
                    ),
                )],
            ));
            continue;
        }
        let matched = match (options.mode, &contact.id) {
            (Mode::CreateAll, _) => None,
            (_, Some(id)) if key_kind == Identifier::Id => set.with_id(id.uuid()),
            _ => set.holder(key_kind, key),
        };
        let mut kept = Vec::new();
        let mut result = match (options.mode, matched) {
            (_, Some(i)) if set.contacts[i].deleted_at.is_some() && !options.restore_deleted => {
                skipped(
                    row.index,
                    Some(set.contacts[i].id),
                    RowIssue::new(
                        key_kind.as_str(),
                        ErrorCode::DeletedContact,
                        "the matching contact is deleted; send restoreDeleted: true to restore it",
                    ),
                )
            }
            (Mode::InsertOnly, Some(i)) => skipped(
                row.index,
                Some(set.contacts[i].id),
                RowIssue::new(
                    key_kind.as_str(),
                    ErrorCode::AlreadyExists,
                    "mode is insertOnly and a contact with this identifier exists",
                ),
            ),
            (Mode::UpdateOnly, None) => skipped(
                row.index,
                None,
                RowIssue::new(
                    key_kind.as_str(),
                    ErrorCode::NotFound,
                    "mode is updateOnly and no contact has this identifier",
                ),
            ),
            (_, Some(i)) => {
                let mut candidate = set.contacts[i].clone();
                apply(&mut candidate, &contact, options.overwrite);
                if let Patch::Set(new) = &contact.new_external_id {
                    candidate.external_id = Some(new.as_str().to_owned());
                }
                apply_tags(&mut candidate.tags, &contact.tags, options);
                let before = &set.contacts[i];
                apply_consent(
                    &mut candidate,
                    Some(before),
                    &contact,
                    options,
                    applying,
                    &mut kept,
                );
                candidate.deleted_at = None;
                match set.conflict(&candidate, Some(i)) {
                    Some(issue) => failed(row.index, vec![issue]),
                    None => {
                        let id = candidate.id;
                        set.put(Some(i), candidate);
                        outcome(row.index, RowStatus::Updated, Some(id))
                    }
                }
            }
            (_, None) => {
                let mut candidate = StoredContact::empty(new_id());
                apply(&mut candidate, &contact, true);
                apply_tags(&mut candidate.tags, &contact.tags, options);
                apply_consent(&mut candidate, None, &contact, options, applying, &mut kept);
                match set.conflict(&candidate, None) {
                    Some(issue) => failed(row.index, vec![issue]),
                    None => {
                        let id = candidate.id;
                        set.put(None, candidate);
                        outcome(row.index, RowStatus::Created, Some(id))
                    }
                }
            }
        };
        // What validation left out (a date without a year) is said whatever the outcome; a
        // kept opt-out only when the row was applied.
        result.warnings.extend(contact.warnings);
        if matches!(result.status, RowStatus::Created | RowStatus::Updated) {
            result.warnings.append(&mut kept);
        }
        kept.clear();
        outcomes.push(result);
    }
    let existing = set.existing;
    let mut plan = Plan {
        outcomes,
        ..Plan::default()
    };
    for (i, (contact, touched)) in set.contacts.into_iter().zip(set.touched).enumerate() {
        match (touched, set.original.get(i)) {
            // Matched and applied, but the result is what is stored: the row is `updated`
            // (it was applied), and there is nothing to write.
            (true, Some(stored)) if *stored == contact => {}
            (true, Some(stored)) => {
                if stored.deleted_at.is_some() && contact.deleted_at.is_none() {
                    plan.restored.push(contact.id);
                }
                plan.updates.push(contact);
            }
            (true, None) => plan.inserts.push(contact),
            (false, _) => {}
        }
    }
    debug_assert!(plan.updates.len() <= existing);
    // New contacts are inserted in key order, so two batches racing for the same new
    // identifiers take their index locks in the same order.
    plan.inserts
        .sort_by(|a, b| a.identifier(key_kind).cmp(&b.identifier(key_kind)));
    plan
}

/// The batch's plan if no stored contact holds any identifier of its rows, as in a first
/// import: `None` when it could not be that plan whatever is stored (a row that names a
/// contact by id, `updateOnly`, or a row that would not become a new contact even then).
///
/// Which stored contacts hold the rows' identifiers changes only the outcomes of the rows that
/// are valid, carry the `dedupeOn` identifier and are no duplicate. When each of those creates
/// a contact here, the plan against the stored contacts is this one exactly if none of the new
/// contacts' identifiers is held, which is what inserting them checks (their unique indexes).
/// A contact found through another row's identifiers (a duplicate's) changes nothing: it holds
/// no identifier of a new contact.
pub fn as_all_new(
    rows: &[RowInput],
    options: &ImportOptions,
    applying: &Applying,
    new_id: impl FnMut() -> Uuid,
) -> Option<Plan> {
    if options.mode == Mode::UpdateOnly {
        return None;
    }
    let mut matching = 0;
    for row in rows {
        let Ok(contact) = &row.parsed else { continue };
        if contact.id.is_some() {
            return None;
        }
        if !row.erased && !row.duplicate && contact.dedupe_key(options.dedupe_on).is_some() {
            matching += 1;
        }
    }
    let plan = plan(rows.to_vec(), Vec::new(), options, applying, new_id);
    let created = plan
        .outcomes
        .iter()
        .filter(|o| o.status == RowStatus::Created)
        .count();
    (created == matching && plan.inserts.len() == matching && plan.updates.is_empty())
        .then_some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::consent::Channel;
    use crate::validate::{Rules, validate_contact};
    use serde_json::{Value, json};
    use std::collections::HashMap;

    fn row(index: i32, raw: Value) -> RowInput {
        let fields = HashMap::new();
        let rules = Rules {
            dedupe_on: Identifier::Phone,
            default_region: None,
            fields: &fields,
            today: time::macros::date!(2026 - 01 - 01),
            date_format: Default::default(),
        };
        RowInput {
            index,
            parsed: validate_contact(&raw, &rules),
            duplicate: false,
            erased: false,
        }
    }

    fn stored(n: u128, phone: &str, email: Option<&str>) -> StoredContact {
        StoredContact {
            phone: Some(phone.into()),
            email: email.map(Into::into),
            first_name: Some("Stored".into()),
            ..StoredContact::empty(Uuid::from_u128(n))
        }
    }

    fn options(mode: Mode) -> ImportOptions {
        ImportOptions {
            mode,
            ..ImportOptions::default()
        }
    }

    fn ids() -> impl FnMut() -> Uuid {
        let mut n = 1000u128;
        move || {
            n += 1;
            Uuid::from_u128(n)
        }
    }

    fn applying() -> Applying {
        Applying {
            source: "import:test".into(),
            now: time::macros::datetime!(2026-01-01 12:00 UTC),
        }
    }

    fn statuses(plan: &Plan) -> Vec<RowStatus> {
        plan.outcomes.iter().map(|o| o.status).collect()
    }

    #[test]
    fn each_mode_treats_a_match_and_a_miss_as_documented() {
        use RowStatus::*;
        let cases = [
            (Mode::Upsert, [Updated, Created]),
            (Mode::InsertOnly, [Skipped, Created]),
            (Mode::UpdateOnly, [Updated, Skipped]),
        ];
        for (mode, expected) in cases {
            let rows = vec![
                row(0, json!({"phone": "+212612345678", "firstName": "A"})),
                row(1, json!({"phone": "+212612345679"})),
            ];
            let plan = plan(
                rows,
                vec![stored(1, "+212612345678", None)],
                &options(mode),
                &applying(),
                ids(),
            );
            assert_eq!(statuses(&plan), expected, "{mode:?}");
        }
    }

    #[test]
    fn a_matched_row_that_changes_nothing_is_updated_but_not_written() {
        let existing = vec![stored(1, "+212612345678", Some("a@b.co"))];
        let same = plan(
            vec![row(0, json!({"phone": "+212612345678", "email": "a@b.co"}))],
            existing.clone(),
            &options(Mode::Upsert),
            &applying(),
            ids(),
        );
        assert_eq!(statuses(&same), [RowStatus::Updated]);
        assert!(same.updates.is_empty(), "{:?}", same.updates);
        let changed = plan(
            vec![row(
                0,
                json!({"phone": "+212612345678", "firstName": "New"}),
            )],
            existing,
            &options(Mode::Upsert),
            &applying(),
            ids(),
        );
        assert_eq!(statuses(&changed), [RowStatus::Updated]);
        assert_eq!(changed.updates.len(), 1);
        assert_eq!(changed.updates[0].first_name.as_deref(), Some("New"));
    }

    #[test]
    fn create_all_never_matches_and_keeps_identifiers_unique() {
        let rows = vec![
            row(0, json!({"phone": "+212612345678"})),
            row(1, json!({"phone": "+212612345670"})),
        ];
        let plan = plan(
            rows,
            vec![stored(1, "+212612345678", None)],
            &options(Mode::CreateAll),
            &applying(),
            ids(),
        );
        assert_eq!(statuses(&plan), [RowStatus::Failed, RowStatus::Created]);
        assert_eq!(
            plan.outcomes[0].errors[0].code,
            ErrorCode::IdentifierConflict
        );
        assert_eq!(plan.inserts.len(), 1);
    }

    #[test]
    fn overwrite_false_fills_only_empty_fields_and_never_clears() {
        let mut existing = stored(1, "+212612345678", None);
        existing.occupation = Some("nurse".into());
        let rows = vec![row(
            0,
            json!({"phone": "+212612345678", "firstName": "New", "lastName": "Filled", "occupation": null}),
        )];
        let opts = ImportOptions {
            overwrite: false,
            ..ImportOptions::default()
        };
        let plan = plan(rows, vec![existing], &opts, &applying(), ids());
        let c = &plan.updates[0];
        assert_eq!(c.first_name.as_deref(), Some("Stored"));
        assert_eq!(c.last_name.as_deref(), Some("Filled"));
        assert_eq!(c.occupation.as_deref(), Some("nurse"));
    }

    #[test]
    fn a_second_row_cannot_take_an_identifier_the_first_row_claimed() {
        let rows = vec![
            row(
                0,
                json!({"phone": "+212612345678", "email": "a@example.com"}),
            ),
            row(
                1,
                json!({"phone": "+212612345679", "email": "a@example.com"}),
            ),
        ];
        let plan = plan(rows, vec![], &options(Mode::Upsert), &applying(), ids());
        assert_eq!(statuses(&plan), [RowStatus::Created, RowStatus::Failed]);
        assert_eq!(plan.outcomes[1].errors[0].field, "email");
        assert_eq!(plan.inserts.len(), 1);
    }

    #[test]
    fn deleted_matches_are_skipped_with_a_warning_unless_restored() {
        let mut deleted = stored(1, "+212612345678", None);
        deleted.deleted_at = Some(time::OffsetDateTime::UNIX_EPOCH);
        let rows = || vec![row(0, json!({"phone": "+212612345678"}))];
        let skipped = plan(
            rows(),
            vec![deleted.clone()],
            &options(Mode::Upsert),
            &applying(),
            ids(),
        );
        assert_eq!(statuses(&skipped), [RowStatus::Skipped]);
        assert_eq!(
            skipped.outcomes[0].warnings[0].code,
            ErrorCode::DeletedContact
        );
        assert!(skipped.updates.is_empty());
        let opts = ImportOptions {
            restore_deleted: true,
            ..ImportOptions::default()
        };
        let restored = plan(rows(), vec![deleted], &opts, &applying(), ids());
        assert_eq!(statuses(&restored), [RowStatus::Updated]);
        assert_eq!(restored.updates[0].deleted_at, None);
    }

    #[test]
    fn failed_and_duplicate_rows_write_nothing() {
        let mut dup = row(1, json!({"phone": "+212612345679"}));
        dup.duplicate = true;
        let rows = vec![row(0, json!({"phone": "nope"})), dup];
        let plan = plan(rows, vec![], &options(Mode::Upsert), &applying(), ids());
        assert_eq!(statuses(&plan), [RowStatus::Failed, RowStatus::Failed]);
        assert_eq!(plan.outcomes[1].errors[0].code, ErrorCode::DuplicateInFile);
        assert!(plan.inserts.is_empty() && plan.updates.is_empty());
    }

    fn mixed_batch() -> Plan {
        let rows = vec![
            row(0, json!({"phone": "+212600000001", "firstName": "New"})),
            row(1, json!({"phone": "+212600000002", "firstName": "Changed"})),
            row(2, json!({"phone": "not a phone"})),
        ];
        let existing = vec![stored(1, "+212600000002", None)];
        plan(rows, existing, &options(Mode::Upsert), &applying(), ids())
    }

    #[test]
    fn a_dry_run_keeps_the_outcomes_and_writes_nothing() {
        let dry = mixed_batch().dry_run();
        assert!(dry.inserts.is_empty() && dry.updates.is_empty());
        assert_eq!(
            statuses(&dry),
            [RowStatus::Created, RowStatus::Updated, RowStatus::Failed]
        );
        // The contact it would create does not exist; the one it would update does.
        assert_eq!(dry.outcomes[0].contact_id, None);
        assert_eq!(dry.outcomes[1].contact_id, Some(Uuid::from_u128(1)));
        assert_eq!(dry.outcomes[2].errors[0].code, ErrorCode::InvalidPhone);
    }

    #[test]
    fn all_or_nothing_with_a_failed_row_skips_every_other_row() {
        let plan = mixed_batch();
        assert_eq!(plan.failed(), 1);
        let none = plan.not_applied();
        assert!(none.inserts.is_empty() && none.updates.is_empty());
        assert_eq!(
            statuses(&none),
            [RowStatus::Skipped, RowStatus::Skipped, RowStatus::Failed]
        );
        for outcome in &none.outcomes[..2] {
            assert_eq!(
                outcome.warnings.last().map(|w| w.code),
                Some(ErrorCode::NotApplied)
            );
        }
        assert_eq!(none.outcomes[0].contact_id, None);
        assert!(none.outcomes[2].warnings.is_empty());
    }

    #[test]
    fn own_tags_replace_with_overwrite_and_add_without_then_request_tags_apply() {
        let s = |v: &[&str]| v.iter().map(|t| (*t).to_owned()).collect::<Vec<String>>();
        let request = ImportOptions {
            tags: s(&["2026"]),
            tags_remove: s(&["old"]),
            ..ImportOptions::default()
        };
        let mut tags = s(&["old", "keep"]);
        apply_tags(&mut tags, &Patch::Set(s(&["vip"])), &request);
        assert_eq!(tags, s(&["vip", "2026"]));

        let add_only = ImportOptions {
            overwrite: false,
            ..request.clone()
        };
        let mut tags = s(&["old", "keep"]);
        apply_tags(&mut tags, &Patch::Set(s(&["vip", "keep"])), &add_only);
        assert_eq!(tags, s(&["keep", "vip", "2026"]));
        let mut tags = s(&["keep"]);
        apply_tags(&mut tags, &Patch::Clear, &add_only);
        assert_eq!(tags, s(&["keep", "2026"]), "overwrite false never clears");

        let mut tags = s(&["keep"]);
        apply_tags(&mut tags, &Patch::Clear, &request);
        assert_eq!(tags, s(&["2026"]));
        let mut tags = s(&["keep", "old"]);
        apply_tags(&mut tags, &Patch::Absent, &request);
        assert_eq!(tags, s(&["keep", "2026"]));
    }

    fn consent_of(c: &StoredContact, channel: Channel) -> Option<ConsentStatus> {
        c.consent.get(&channel).map(|x| x.status)
    }

    #[test]
    fn an_opt_out_is_sticky_unless_the_import_allows_resubscribing() {
        let mut opted_out = stored(1, "+212612345678", Some("a@b.co"));
        opted_out.consent.insert(
            Channel::Sms,
            Consent {
                status: ConsentStatus::OptedOut,
                updated_at: time::macros::datetime!(2025-06-01 08:00 UTC),
                source: "shop".into(),
            },
        );
        let rows = || {
            vec![row(
                0,
                json!({"phone": "+212612345678", "firstName": "New", "consent": {"sms": "optedIn", "email": "yes"}}),
            )]
        };
        // overwrite: true is not enough.
        let kept = plan(
            rows(),
            vec![opted_out.clone()],
            &options(Mode::Upsert),
            &applying(),
            ids(),
        );
        assert_eq!(statuses(&kept), [RowStatus::Updated]);
        let updated = &kept.updates[0];
        assert_eq!(
            updated.first_name.as_deref(),
            Some("New"),
            "the rest of the row applies"
        );
        assert_eq!(
            consent_of(updated, Channel::Sms),
            Some(ConsentStatus::OptedOut)
        );
        assert_eq!(updated.consent[&Channel::Sms].source, "shop");
        assert_eq!(
            consent_of(updated, Channel::Email),
            Some(ConsentStatus::OptedIn)
        );
        assert_eq!(updated.consent[&Channel::Email].source, "import:test");
        let warnings: Vec<(&str, ErrorCode)> = kept.outcomes[0]
            .warnings
            .iter()
            .map(|w| (w.field.as_str(), w.code))
            .collect();
        assert_eq!(warnings, [("consent.sms", ErrorCode::ConsentKept)]);
        // Clearing an opt-out would opt back in too.
        let cleared = plan(
            vec![row(
                0,
                json!({"phone": "+212612345678", "consent": {"sms": null}}),
            )],
            vec![opted_out.clone()],
            &options(Mode::Upsert),
            &applying(),
            ids(),
        );
        assert_eq!(cleared.outcomes[0].warnings[0].code, ErrorCode::ConsentKept);
        assert!(cleared.updates.is_empty(), "nothing changed");
        // allowResubscribe does it.
        let allowed = ImportOptions {
            allow_resubscribe: true,
            ..options(Mode::Upsert)
        };
        let back = plan(
            rows(),
            vec![opted_out.clone()],
            &allowed,
            &applying(),
            ids(),
        );
        assert_eq!(
            consent_of(&back.updates[0], Channel::Sms),
            Some(ConsentStatus::OptedIn)
        );
        assert_eq!(back.outcomes[0].warnings, []);
        // An opt-out over an opt-in is always taken; without overwrite nothing stored changes.
        let mut opted_in = opted_out.clone();
        opted_in.consent.get_mut(&Channel::Sms).unwrap().status = ConsentStatus::OptedIn;
        let out_rows = || {
            vec![row(
                0,
                json!({"phone": "+212612345678", "consent": {"sms": "no"}}),
            )]
        };
        let out = plan(
            out_rows(),
            vec![opted_in.clone()],
            &options(Mode::Upsert),
            &applying(),
            ids(),
        );
        assert_eq!(
            consent_of(&out.updates[0], Channel::Sms),
            Some(ConsentStatus::OptedOut)
        );
        let gentle = ImportOptions {
            overwrite: false,
            ..options(Mode::Upsert)
        };
        let unchanged = plan(out_rows(), vec![opted_in], &gentle, &applying(), ids());
        assert!(
            unchanged.updates.is_empty(),
            "overwrite: false keeps every stored consent"
        );
    }

    #[test]
    fn a_consent_sent_again_changes_nothing_and_a_new_address_is_active_again() {
        let mut c = stored(1, "+212612345678", Some("a@b.co"));
        c.consent.insert(
            Channel::Email,
            Consent {
                status: ConsentStatus::OptedIn,
                updated_at: time::macros::datetime!(2025-06-01 08:00 UTC),
                source: "shop".into(),
            },
        );
        c.email_status = "passive".into();
        let same = plan(
            vec![row(
                0,
                json!({"phone": "+212612345678", "consent": {"email": "optedIn"}}),
            )],
            vec![c.clone()],
            &options(Mode::Upsert),
            &applying(),
            ids(),
        );
        assert!(same.updates.is_empty(), "{:?}", same.updates);
        let moved = plan(
            vec![row(
                0,
                json!({"phone": "+212612345678", "email": "new@b.co"}),
            )],
            vec![c.clone()],
            &options(Mode::Upsert),
            &applying(),
            ids(),
        );
        assert_eq!(moved.updates[0].email_status, "active");
        let told = plan(
            vec![row(
                0,
                json!({"phone": "+212612345678", "email": "new@b.co", "emailStatus": "passive", "status": "passive"}),
            )],
            vec![c],
            &options(Mode::Upsert),
            &applying(),
            ids(),
        );
        assert_eq!(told.updates[0].email_status, "passive");
        assert_eq!(told.updates[0].status, "passive");
    }

    /// A batch planned as all new is the plan against no stored contact, whatever rows fail on
    /// their own; a batch where a row would not become a new contact even then is not.
    #[test]
    fn a_batch_is_planned_as_all_new_only_when_every_matchable_row_creates_a_contact() {
        let mut duplicate = row(2, json!({"phone": "+212612345670"}));
        duplicate.duplicate = true;
        let rows = vec![
            row(0, json!({"phone": "+212612345678", "email": "a@b.co"})),
            row(1, json!({"phone": "not a phone"})),
            duplicate,
            row(3, json!({"email": "no-phone@b.co"})),
            row(4, json!({"phone": "+212612345679"})),
        ];
        let upsert = options(Mode::Upsert);
        let as_new = as_all_new(&rows, &upsert, &applying(), ids()).expect("all new");
        let against_none = plan(rows.clone(), Vec::new(), &upsert, &applying(), ids());
        assert_eq!(as_new.outcomes, against_none.outcomes);
        assert_eq!(as_new.inserts, against_none.inserts);
        use RowStatus::*;
        assert_eq!(
            statuses(&as_new),
            [Created, Failed, Failed, Failed, Created]
        );

        assert!(as_all_new(&rows, &options(Mode::UpdateOnly), &applying(), ids()).is_none());
        // Row 1 would take row 0's email: it fails whatever is stored, and which contact it
        // names depends on what is.
        let clash = vec![
            row(0, json!({"phone": "+212612345678", "email": "a@b.co"})),
            row(1, json!({"phone": "+212612345679", "email": "a@b.co"})),
        ];
        assert!(as_all_new(&clash, &upsert, &applying(), ids()).is_none());
    }
}
