//! One interface watcher per runtime, shared by all its agents.
//!
//! [`Runtime::interface_changes`] is costly to hold: `if-watch` keeps a netlink socket,
//! its buffers and a task per stream (about 78 KB per agent, measured with the counting
//! allocator of `tests/benches/endpoint.rs`). The agents of a runtime share one stream
//! instead: a [`Hub`] per runtime, whose task takes the notifications and wakes every
//! subscriber ([`Subscription`]); the hub and its task go with the last subscriber.
//! Agents on different runtimes (a test runtime with interfaces of its own, say) get
//! different hubs: a hub is keyed by its runtime's identity.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use futures::StreamExt;
use futures::task::AtomicWaker;

use crate::runtime::Runtime;
use crate::send::relock;

/// The hubs alive, by runtime identity.
static HUBS: Mutex<Vec<(usize, Weak<Hub>)>> = Mutex::new(Vec::new());

/// The identity of a runtime: the address of the object behind its `Arc`.
fn identity(runtime: &Arc<dyn Runtime>) -> usize {
    Arc::as_ptr(runtime) as *const () as usize
}

/// The shared watcher of one runtime's interfaces.
struct Hub {
    /// Counts the notifications.
    generation: AtomicU64,
    /// The runtime's notifications have ended (or it has none).
    ended: AtomicBool,
    /// The subscribers' wakers, by slot.
    wakers: Mutex<Slots>,
    /// The hub's task, woken to end when the hub goes.
    task: Arc<AtomicWaker>,
}

#[derive(Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.task.wake();
    }
}

impl Hub {
    fn wake_all(&self) {
        let wakers: Vec<Waker> = relock(&self.wakers)
            .wakers
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }
}

/// One agent's view of its runtime's interface notifications.
pub(crate) struct Subscription {
    hub: Arc<Hub>,
    slot: usize,
    seen: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut slots = relock(&self.hub.wakers);
        slots.wakers[self.slot] = None;
        slots.free.push(self.slot);
    }
}

impl Subscription {
    /// Subscribes to `runtime`'s notifications, starting its hub if it has none; `None`
    /// when the runtime gives none ([`Runtime::interface_changes`]).
    pub fn new(runtime: &Arc<dyn Runtime>) -> Option<Subscription> {
        let key = identity(runtime);
        let hub = {
            let mut hubs = relock(&HUBS);
            hubs.retain(|(_, h)| h.strong_count() > 0);
            match hubs
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, h)| h.upgrade())
            {
                Some(hub) => hub,
                None => {
                    let changes = runtime.interface_changes()?;
                    let task = Arc::new(AtomicWaker::new());
                    let hub = Arc::new(Hub {
                        generation: AtomicU64::new(0),
                        ended: AtomicBool::new(false),
                        wakers: Mutex::new(Slots::default()),
                        task: Arc::clone(&task),
                    });
                    runtime.spawn(Box::pin(pump(Arc::downgrade(&hub), task, changes)));
                    hubs.push((key, Arc::downgrade(&hub)));
                    hub
                }
            }
        };
        let slot = {
            let mut slots = relock(&hub.wakers);
            match slots.free.pop() {
                Some(slot) => slot,
                None => {
                    slots.wakers.push(None);
                    slots.wakers.len() - 1
                }
            }
        };
        let seen = hub.generation.load(Ordering::Acquire);
        Some(Subscription { hub, slot, seen })
    }

    /// `Ready(Some(()))` when notifications came since the last call (all of them taken
    /// at once), `Ready(None)` once the runtime gives no more, else `Pending` with `cx`'s
    /// waker kept (one per subscription, replaced each time).
    pub fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        relock(&self.hub.wakers).wakers[self.slot] = Some(cx.waker().clone());
        let now = self.hub.generation.load(Ordering::Acquire);
        if now != self.seen {
            self.seen = now;
            return Poll::Ready(Some(()));
        }
        if self.hub.ended.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

/// The hub's task: takes the runtime's notifications and wakes the subscribers; ends with
/// the hub, or with the notifications.
async fn pump(
    hub: Weak<Hub>,
    task: Arc<AtomicWaker>,
    mut changes: crate::runtime::InterfaceChanges,
) {
    futures::future::poll_fn(|cx| {
        task.register(cx.waker());
        let Some(strong) = hub.upgrade() else {
            return Poll::Ready(());
        };
        let mut changed = false;
        loop {
            match changes.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => changed = true,
                Poll::Ready(None) => {
                    strong.ended.store(true, Ordering::Release);
                    strong.wake_all();
                    return Poll::Ready(());
                }
                Poll::Pending => break,
            }
        }
        if changed {
            strong.generation.fetch_add(1, Ordering::AcqRel);
            strong.wake_all();
        }
        Poll::Pending
    })
    .await;
    tracing::debug!("interface watcher stops");
}
