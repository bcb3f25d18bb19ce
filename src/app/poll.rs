// SPDX-License-Identifier: GPL-3.0-or-later
//! When the window reads the state: the poll scheduler (no poll during an
//! act nor on top of another, a pause after each that grows with its
//! duration, at once after an act or a watched change) and what the root
//! component keeps between messages.

use std::time::{Duration, Instant};

use super::ops::Op;
use crate::client::Status;

/// How many times its own duration the window waits after a poll before the
/// next timed one, so that polling takes at most a fifth of the time even
/// where a status walk is slow (a huge tree, a slow disk). Where it is
/// quick the two-second timer is what paces the polls.
pub const POLL_PAUSE_FACTOR: u32 = 4;

/// What the root component keeps between messages, apart from widgets.
#[derive(Debug, Default)]
pub struct AppState {
    pub busy: Option<Op>,
    /// When the running poll started, if one runs.
    pub polling: Option<Instant>,
    /// No timed poll before this: a poll walks every managed tree, so the
    /// pause after one is [`POLL_PAUSE_FACTOR`] times what it took (a slow
    /// walk is not run back to back while the window is open). `None` after
    /// an act, whose result is read at once.
    pub next_poll: Option<Instant>,
    /// The least pause between timed polls: long while the state file is
    /// watched (every act of `almost` is seen at once; the timed poll only
    /// catches flags changed by other means), none otherwise (the timer
    /// paces them).
    pub min_pause: Duration,
    /// The state file changed while a poll ran: its result may predate the
    /// change, so the next tick polls again.
    pub changed_while_polling: bool,
    /// The last poll error shown (shown once, not every two seconds).
    pub poll_error: Option<String>,
    /// The last status read, so that the report of a lock or unlock can
    /// update the window at once, without waiting for the next poll.
    pub status: Option<Status>,
    /// The number of layers last listed.
    pub open_layers: usize,
    /// The files the first overview named are watched (or could not be).
    pub watch_tried: bool,
}

impl AppState {
    /// Whether a poll may start now: never during an act (a half-done lock
    /// would read as "partly protected") nor on top of another poll.
    pub fn start_poll(&mut self, now: Instant) -> bool {
        if self.busy.is_some() || self.polling.is_some() || self.next_poll.is_some_and(|t| now < t)
        {
            return false;
        }
        self.polling = Some(now);
        true
    }

    /// Records the end of a poll, and when the next may start.
    pub fn polled(&mut self, now: Instant) {
        if let Some(started) = self.polling.take() {
            let pause = now.duration_since(started) * POLL_PAUSE_FACTOR;
            self.next_poll = if std::mem::take(&mut self.changed_while_polling) {
                None
            } else {
                Some(now + pause.max(self.min_pause))
            };
        }
    }

    /// The state file changed: the next poll may start at once (or, if one
    /// runs now, right after it).
    pub fn state_changed(&mut self) {
        self.next_poll = None;
        if self.polling.is_some() {
            self.changed_while_polling = true;
        }
    }

    /// Whether an act may start now.
    pub fn start(&mut self, op: &Op) -> bool {
        if self.busy.is_some() {
            return false;
        }
        self.busy = Some(op.clone());
        true
    }

    /// A new poll error: `Some` when it should be shown (it is new).
    pub fn poll_error(&mut self, error: Option<String>) -> Option<String> {
        let fresh = error.is_some() && error != self.poll_error;
        self.poll_error = error;
        if fresh { self.poll_error.clone() } else { None }
    }

    /// Records a finished act.
    pub fn finish(&mut self) {
        self.busy = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_act_at_a_time_and_no_poll_during_it() {
        let now = Instant::now();
        let mut s = AppState::default();
        assert!(s.start_poll(now));
        assert!(!s.start_poll(now));
        s.polled(now);
        assert!(s.start(&Op::Lock));
        assert!(!s.start(&Op::Undo));
        assert!(!s.start_poll(now));
        s.finish();
        assert!(s.start_poll(now));
    }

    #[test]
    fn polls_pause_for_a_multiple_of_their_duration() {
        let t0 = Instant::now();
        let mut s = AppState::default();
        assert!(s.start_poll(t0));
        // A poll that took 1.5 s (a huge tree): the next waits 6 s more.
        let end = t0 + Duration::from_millis(1_500);
        s.polled(end);
        assert!(!s.start_poll(end + Duration::from_secs(2)));
        assert!(!s.start_poll(end + Duration::from_millis(5_900)));
        assert!(s.start_poll(end + Duration::from_secs(6)));
        // After an act the pause is dropped: its result is read at once.
        s.polled(end + Duration::from_secs(7));
        s.next_poll = None;
        assert!(s.start_poll(end + Duration::from_secs(7)));
    }

    #[test]
    fn a_watched_state_slows_the_timed_polls_but_not_the_changes() {
        let t0 = Instant::now();
        let mut s = AppState {
            min_pause: Duration::from_secs(20),
            ..AppState::default()
        };
        assert!(s.start_poll(t0));
        let end = t0 + Duration::from_millis(100);
        s.polled(end);
        // A quick poll: the next timed one waits for the watched pause.
        assert!(!s.start_poll(end + Duration::from_secs(2)));
        assert!(!s.start_poll(end + Duration::from_millis(19_900)));
        // The state file changed: read at once.
        s.state_changed();
        let t1 = end + Duration::from_secs(3);
        assert!(s.start_poll(t1));
        // A change while that poll runs: its result may be older than the
        // change, so the next tick polls again.
        s.state_changed();
        s.polled(t1 + Duration::from_millis(100));
        assert!(s.start_poll(t1 + Duration::from_secs(2)));
        s.polled(t1 + Duration::from_millis(2_100));
        assert!(!s.start_poll(t1 + Duration::from_secs(4)));
    }

    #[test]
    fn a_poll_error_is_shown_once() {
        let mut s = AppState::default();
        assert_eq!(s.poll_error(Some("bad".into())), Some("bad".into()));
        assert_eq!(s.poll_error(Some("bad".into())), None);
        assert_eq!(s.poll_error(None), None);
        assert_eq!(s.poll_error(Some("bad".into())), Some("bad".into()));
    }
}
