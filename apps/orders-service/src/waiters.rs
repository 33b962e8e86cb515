//! Readers waiting for an order to appear (or to reach a final state) on this instance:
//! any number per order id, each removed once answered or given up (its
//! [`Registration`] dropped). A reader registers *before* it reads the store and the
//! view notifies *after* the store has the update, so an update between the two is
//! never missed: either the read sees it or the notification does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use orders_platform::records::{Order, OrderState};
use tokio::sync::oneshot;

/// What a reader waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The order in any state.
    AnyState,
    /// The order once VALIDATED or FAILED.
    Final,
}

impl Wanted {
    /// Whether `order` is what the reader waits for.
    pub fn accepts(self, order: &Order) -> bool {
        match self {
            Wanted::AnyState => true,
            Wanted::Final => matches!(order.state, OrderState::Validated | OrderState::Failed),
        }
    }
}

struct Waiter {
    ticket: u64,
    wanted: Wanted,
    answer: oneshot::Sender<Order>,
}

#[derive(Default)]
struct Table {
    next_ticket: u64,
    by_order: HashMap<String, Vec<Waiter>>,
}

/// The waiting readers of this instance.
#[derive(Default)]
pub struct Waiters {
    table: Mutex<Table>,
}

/// A reader's place in line; dropping it gives the place up.
pub struct Registration {
    waiters: Arc<Waiters>,
    order_id: String,
    ticket: u64,
    /// Receives the order when an update the reader wants arrives.
    pub answer: oneshot::Receiver<Order>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut table = self.waiters.lock();
        if let Some(waiting) = table.by_order.get_mut(&self.order_id) {
            waiting.retain(|w| w.ticket != self.ticket);
            if waiting.is_empty() {
                table.by_order.remove(&self.order_id);
            }
        }
    }
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a reader of order `order_id` waiting for `wanted`.
    pub fn register(self: &Arc<Self>, order_id: &str, wanted: Wanted) -> Registration {
        let (answer, receiver) = oneshot::channel();
        let mut table = self.lock();
        table.next_ticket += 1;
        let ticket = table.next_ticket;
        table
            .by_order
            .entry(order_id.to_string())
            .or_default()
            .push(Waiter {
                ticket,
                wanted,
                answer,
            });
        Registration {
            waiters: self.clone(),
            order_id: order_id.to_string(),
            ticket,
            answer: receiver,
        }
    }

    /// Hands `order`, the new event of `order_id`, to every reader waiting for it.
    pub fn notify(&self, order_id: &str, order: &Order) {
        let mut table = self.lock();
        let Some(waiting) = table.by_order.get_mut(order_id) else {
            return;
        };
        let (ready, still): (Vec<Waiter>, Vec<Waiter>) =
            waiting.drain(..).partition(|w| w.wanted.accepts(order));
        *waiting = still;
        if waiting.is_empty() {
            table.by_order.remove(order_id);
        }
        drop(table);
        for waiter in ready {
            let _ = waiter.answer.send(order.clone());
        }
    }

    /// Readers waiting now.
    pub fn len(&self) -> usize {
        self.lock().by_order.values().map(Vec::len).sum()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orders_platform::records::Product;

    fn order(state: OrderState) -> Order {
        Order::created("1", 2, Product::Jumpers, 1, 1.0).in_state(state)
    }

    #[test]
    fn every_reader_of_an_order_gets_the_update_it_waits_for() {
        let waiters = Arc::new(Waiters::default());
        let mut any: Vec<Registration> = (0..3)
            .map(|_| waiters.register("1", Wanted::AnyState))
            .collect();
        let mut last = waiters.register("1", Wanted::Final);
        let mut other = waiters.register("2", Wanted::AnyState);
        assert_eq!(waiters.len(), 5);
        waiters.notify("1", &order(OrderState::Created));
        for r in &mut any {
            assert_eq!(r.answer.try_recv().unwrap().state, OrderState::Created);
        }
        assert!(last.answer.try_recv().is_err(), "CREATED is not final");
        assert!(other.answer.try_recv().is_err());
        waiters.notify("1", &order(OrderState::Validated));
        assert_eq!(last.answer.try_recv().unwrap().state, OrderState::Validated);
        assert_eq!(waiters.len(), 1, "answered readers are removed");
        drop(other);
        drop(any);
        drop(last);
        assert!(waiters.is_empty(), "a reader that gives up is removed");
    }
}
