//! Fair sharing of the workers between tenants: which tenants' batches the relay publishes now.
//!
//! One broker queue serves every tenant in arrival order, so whatever sits in it is served
//! first. The relay therefore keeps the queue short and decides the order itself: at most
//! `max_in_flight` batches published and not yet done in all, and, while more than one tenant
//! has batches waiting, at most `per_tenant` of each tenant's; slots go round-robin, to the
//! tenant with the fewest batches in flight first (ties: the one whose oldest waiting batch is
//! oldest). A tenant alone may use every slot. Within a tenant, its oldest batches go first.

use uuid::Uuid;

/// A tenant with batches stored and not yet published.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    pub tenant_id: Uuid,
    /// Its batches published and not yet done.
    pub in_flight: i64,
    /// Its batches not yet published.
    pub unpublished: i64,
}

/// How many batches of each waiting tenant to publish now, in the order given (callers list
/// tenants oldest waiting work first). `total_in_flight` counts every tenant's.
pub fn shares(
    waiting: &[Waiting],
    total_in_flight: i64,
    max_in_flight: i64,
    per_tenant: i64,
) -> Vec<(Uuid, i64)> {
    let mut budget = (max_in_flight - total_in_flight).max(0);
    let cap = if waiting.len() > 1 {
        per_tenant.max(1)
    } else {
        max_in_flight
    };
    let mut order: Vec<usize> = (0..waiting.len()).collect();
    // Stable: among equals, the caller's order (oldest waiting work first) stands.
    order.sort_by_key(|&i| waiting[i].in_flight);
    let mut granted = vec![0i64; waiting.len()];
    while budget > 0 {
        let mut progress = false;
        for &i in &order {
            let w = &waiting[i];
            if budget == 0 {
                break;
            }
            if w.in_flight + granted[i] < cap && granted[i] < w.unpublished {
                granted[i] += 1;
                budget -= 1;
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    waiting
        .iter()
        .zip(granted)
        .filter(|(_, n)| *n > 0)
        .map(|(w, n)| (w.tenant_id, n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(n: u128, in_flight: i64, unpublished: i64) -> Waiting {
        Waiting {
            tenant_id: Uuid::from_u128(n),
            in_flight,
            unpublished,
        }
    }

    fn ids(shares: &[(Uuid, i64)]) -> Vec<(u128, i64)> {
        shares.iter().map(|(id, n)| (id.as_u128(), *n)).collect()
    }

    #[test]
    fn a_lone_tenant_may_use_every_slot() {
        assert_eq!(ids(&shares(&[tenant(1, 0, 2000)], 0, 16, 4)), [(1, 16)]);
        assert_eq!(ids(&shares(&[tenant(1, 10, 2000)], 10, 16, 4)), [(1, 6)]);
        assert_eq!(ids(&shares(&[tenant(1, 0, 3)], 0, 16, 4)), [(1, 3)]);
    }

    #[test]
    fn competing_tenants_get_at_most_their_share_round_robin() {
        let got = shares(&[tenant(1, 0, 2000), tenant(2, 0, 6)], 0, 16, 4);
        assert_eq!(ids(&got), [(1, 4), (2, 4)]);
    }

    #[test]
    fn a_newcomer_gets_the_next_free_slot_before_the_tenant_that_holds_them() {
        // Tenant 1 filled every slot while alone; one batch finished.
        let got = shares(&[tenant(1, 15, 1985), tenant(2, 0, 6)], 15, 16, 4);
        assert_eq!(ids(&got), [(2, 1)]);
        // Nothing finished: nobody gets a slot, and tenant 1 gets none until it is under 4.
        assert!(shares(&[tenant(1, 16, 1984), tenant(2, 0, 6)], 16, 16, 4).is_empty());
        let got = shares(&[tenant(1, 3, 1984), tenant(2, 4, 2)], 7, 16, 4);
        assert_eq!(ids(&got), [(1, 1)]);
    }

    #[test]
    fn fewest_in_flight_first_then_oldest_waiting() {
        let got = shares(
            &[tenant(1, 1, 50), tenant(2, 0, 50), tenant(3, 0, 50)],
            1,
            3,
            4,
        );
        assert_eq!(ids(&got), [(2, 1), (3, 1)]);
    }

    #[test]
    fn in_flight_of_tenants_with_nothing_waiting_counts_against_the_total() {
        assert_eq!(ids(&shares(&[tenant(1, 0, 100)], 14, 16, 4)), [(1, 2)]);
        assert!(shares(&[tenant(1, 0, 100)], 20, 16, 4).is_empty());
    }
}
