//! How many files one process receives at once. Each upload holds a bounded amount of memory
//! (a CSV upload a few batches of at most 8 MiB, a workbook its file and shared strings), so
//! the process's memory is bounded only if the uploads in flight are: at most
//! `MAX_CONCURRENT_UPLOADS` in all (503 beyond), of which one tenant holds at most
//! `MAX_TENANT_UPLOADS` (429 beyond), and at most `WORKBOOKS_AT_ONCE` workbooks. A refused
//! upload is answered before its body is read, and says when to try again.

use super::error::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Workbooks read at once by one process (each is held whole, with its shared strings).
pub const WORKBOOKS_AT_ONCE: usize = 2;

/// The uploads a process is receiving, in all and per tenant.
#[derive(Debug)]
pub struct UploadSlots {
    total: usize,
    per_tenant: usize,
    taken: Mutex<Taken>,
}

#[derive(Debug, Default)]
struct Taken {
    all: usize,
    workbooks: usize,
    tenants: HashMap<Uuid, usize>,
}

/// One upload's place; given back when dropped.
#[derive(Debug)]
pub struct UploadSlot {
    slots: Arc<UploadSlots>,
    tenant_id: Uuid,
    workbook: bool,
}

impl UploadSlots {
    /// At most `total` uploads at once, `per_tenant` of one tenant.
    pub fn new(total: usize, per_tenant: usize) -> Arc<Self> {
        Arc::new(Self {
            total: total.max(1),
            per_tenant: per_tenant.max(1),
            taken: Mutex::new(Taken::default()),
        })
    }

    /// A place for one more upload of the tenant, or the answer that refuses it.
    pub fn take(self: &Arc<Self>, tenant_id: Uuid) -> Result<UploadSlot, ApiError> {
        let mut taken = self.taken.lock().map_err(|_| ApiError::internal())?;
        let of_tenant = taken.tenants.get(&tenant_id).copied().unwrap_or(0);
        if of_tenant >= self.per_tenant {
            return Err(ApiError::too_many_uploads(
                format!(
                    "this tenant is already sending {of_tenant} files to this process, its most at once (MAX_TENANT_UPLOADS); nothing was stored, send this one when one of them is done"
                ),
                true,
            ));
        }
        if taken.all >= self.total {
            return Err(ApiError::too_many_uploads(
                format!(
                    "this process is receiving {} files, its most at once (MAX_CONCURRENT_UPLOADS); nothing was stored, try again shortly",
                    taken.all
                ),
                false,
            ));
        }
        taken.all += 1;
        *taken.tenants.entry(tenant_id).or_default() += 1;
        Ok(UploadSlot {
            slots: self.clone(),
            tenant_id,
            workbook: false,
        })
    }
}

impl UploadSlot {
    /// The upload turned out to be a workbook: it also takes one of the workbook places.
    pub fn workbook(&mut self) -> Result<(), ApiError> {
        let mut taken = self.slots.taken.lock().map_err(|_| ApiError::internal())?;
        if taken.workbooks >= WORKBOOKS_AT_ONCE {
            return Err(ApiError::too_many_uploads(
                format!(
                    "this process is reading {WORKBOOKS_AT_ONCE} workbooks, its most at once; nothing was stored, try again shortly (or send CSV)"
                ),
                false,
            ));
        }
        taken.workbooks += 1;
        self.workbook = true;
        Ok(())
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        if let Ok(mut taken) = self.slots.taken.lock() {
            taken.all = taken.all.saturating_sub(1);
            if self.workbook {
                taken.workbooks = taken.workbooks.saturating_sub(1);
            }
            if let Some(n) = taken.tenants.get_mut(&self.tenant_id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    taken.tenants.remove(&self.tenant_id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_bounded_in_all_and_per_tenant_and_places_come_back() {
        let slots = UploadSlots::new(3, 2);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = slots.take(a).unwrap();
        let second = slots.take(a).unwrap();
        assert_eq!(
            slots.take(a).unwrap_err().status.as_u16(),
            429,
            "a's own cap"
        );
        let third = slots.take(b).unwrap();
        let full = slots.take(b).unwrap_err();
        assert_eq!(full.status.as_u16(), 503, "the process's cap");
        assert!(full.retry_after.is_some());
        drop(first);
        let mut fourth = slots.take(b).expect("a place came back");
        fourth.workbook().unwrap();
        drop(third);
        let mut fifth = slots.take(b).unwrap();
        fifth.workbook().unwrap();
        drop(second);
        let mut sixth = slots.take(a).unwrap();
        assert_eq!(
            sixth.workbook().unwrap_err().status.as_u16(),
            503,
            "two workbooks at once"
        );
        drop(fourth);
        sixth.workbook().expect("a workbook place came back");
        drop((fifth, sixth));
        assert_eq!(slots.taken.lock().unwrap().all, 0);
    }
}
