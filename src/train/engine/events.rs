//! Where the engine's events go.

use crate::protocol::Event;

/// Where events go. Sending never blocks; a listener that went away is not an error.
#[derive(Clone)]
pub struct EventSink {
    sender: tokio::sync::mpsc::UnboundedSender<Event>,
    /// Wrap every event as the twin's.
    twin: bool,
}

impl EventSink {
    pub fn new(sender: tokio::sync::mpsc::UnboundedSender<Event>) -> Self {
        Self {
            sender,
            twin: false,
        }
    }

    /// A sink into the same channel whose events are marked as the no-BN twin's.
    pub fn for_twin(&self) -> Self {
        Self {
            sender: self.sender.clone(),
            twin: true,
        }
    }

    pub fn send(&self, event: Event) {
        let event = if self.twin {
            Event::Twin(Box::new(event))
        } else {
            event
        };
        let _ = self.sender.send(event);
    }

    pub fn log(&self, message: impl Into<String>) {
        self.send(Event::Log(message.into()));
    }
}
