//! The agent's queue of [`AgentEvent`]s, kept small while idle.

use super::{AgentEvent, ComponentId, ComponentState, StreamId};
use crate::compact::Queue;

/// The events waiting for [`Agent::poll_event`](super::Agent::poll_event), in order.
///
/// A component's state change, the one event that can come from application data (the
/// peer heard again brings a Disconnected component back), is stored inline in 12 B;
/// every other event is boxed. Once drained the queue keeps room for one inline entry
/// (16 B instead of the 128 B of an `AgentEvent`), so that the data path never allocates
/// (`tests/mux_alloc.rs`), while the rarer events (candidates, selected pairs, failures)
/// cost one allocation each.
#[derive(Debug, Default)]
pub(super) struct EventQueue {
    items: Queue<Queued>,
}

/// One waiting event.
#[derive(Debug)]
enum Queued {
    /// [`AgentEvent::ComponentStateChange`].
    State {
        stream: StreamId,
        component: ComponentId,
        state: ComponentState,
    },
    /// Any other event.
    Boxed(Box<AgentEvent>),
}

impl EventQueue {
    /// Queues `event` after those already waiting.
    pub(super) fn push_back(&mut self, event: AgentEvent) {
        let queued = match event {
            AgentEvent::ComponentStateChange {
                stream,
                component,
                state,
            } => Queued::State {
                stream,
                component,
                state,
            },
            event => Queued::Boxed(Box::new(event)),
        };
        self.items.push_back(queued);
    }

    /// The oldest waiting event.
    pub(super) fn pop_front(&mut self) -> Option<AgentEvent> {
        Some(match self.items.pop_front()? {
            Queued::State {
                stream,
                component,
                state,
            } => AgentEvent::ComponentStateChange {
                stream,
                component,
                state,
            },
            Queued::Boxed(event) => *event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_in_order_and_an_entry_is_small() {
        assert!(std::mem::size_of::<Queued>() <= 16);
        let mut q = EventQueue::default();
        let stream = StreamId::from_index(0);
        let state = AgentEvent::ComponentStateChange {
            stream,
            component: ComponentId::RTP,
            state: ComponentState::Connected,
        };
        q.push_back(AgentEvent::GatheringComplete { stream });
        q.push_back(state.clone());
        q.push_back(AgentEvent::RoleChange { controlling: true });
        assert_eq!(
            q.pop_front(),
            Some(AgentEvent::GatheringComplete { stream })
        );
        assert_eq!(q.pop_front(), Some(state));
        assert_eq!(
            q.pop_front(),
            Some(AgentEvent::RoleChange { controlling: true })
        );
        assert_eq!(q.pop_front(), None);
    }
}
