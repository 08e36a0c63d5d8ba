//! The one poll loop: signals, the stats and clock timers, and each readable listener served
//! a turn at a time until SIGINT, SIGTERM or SIGHUP.
//!
//! Tokens: [`SIGNAL_TOKEN`], then one per UDP listener from [`FIRST_SOCKET_TOKEN`]. Another
//! kind of listener (e.g. a TWAMP-Control TCP server and its connections) takes its tokens
//! from a range of its own above the UDP listeners' and gets a [`Wake`] variant.
#![forbid(unsafe_code)]

use super::control::ControlServer;
use super::listener::Listener;
use super::report::{StatsClock, StatsWriter};
use super::serve::Reflector;
use anyhow::{Context, Result};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// How often the clock's sync state is read again.
const SYNC_CHECK: Duration = Duration::from_secs(1);
const SIGNAL_TOKEN: Token = Token(0);
const FIRST_SOCKET_TOKEN: usize = 1;

/// What a poll event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    Signal,
    /// UDP listener `i` is readable.
    Listener(usize),
    /// A TWAMP-Control listener or connection.
    Control,
    /// Nothing lreflect registered.
    Unknown,
}

/// TWAMP-Control's tokens start here, far above any UDP listener's.
const FIRST_CONTROL_TOKEN: usize = 1 << 20;

fn wake(token: Token, listeners: usize) -> Wake {
    if token == SIGNAL_TOKEN {
        return Wake::Signal;
    }
    if token.0 >= FIRST_CONTROL_TOKEN {
        return Wake::Control;
    }
    match token.0.checked_sub(FIRST_SOCKET_TOKEN) {
        Some(i) if i < listeners => Wake::Listener(i),
        _ => Wake::Unknown,
    }
}

/// The poll loop with its sources registered.
pub(super) struct EventLoop {
    poll: Poll,
    signals: Signals,
}

impl EventLoop {
    /// Registers the end signals and every listener.
    pub(super) fn new(
        listeners: &[Listener],
        control: Option<&mut ControlServer>,
    ) -> Result<EventLoop> {
        let poll = Poll::new().context("cannot create the event loop")?;
        let mut signals =
            Signals::new(crate::cli::end_signals()).context("cannot install signal handlers")?;
        poll.registry()
            .register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)?;
        for (i, l) in listeners.iter().enumerate() {
            poll.registry()
                .register(
                    &mut SourceFd(&l.sock.as_raw_fd()),
                    Token(FIRST_SOCKET_TOKEN + i),
                    Interest::READABLE,
                )
                .context("cannot register the sockets")?;
        }
        if let Some(c) = control {
            c.register(poll.registry(), FIRST_CONTROL_TOKEN)
                .context("cannot register the TWAMP-Control sockets")?;
        }
        Ok(EventLoop { poll, signals })
    }

    /// Serves `listeners` until an end signal, writing a `stats` record per listener each
    /// time `clock` closes a window.
    pub(super) fn run(
        &mut self,
        reflector: &mut Reflector,
        listeners: &mut [Listener],
        mut control: Option<&mut ControlServer>,
        mut clock: StatsClock,
        stats: &mut StatsWriter,
    ) -> Result<()> {
        let mut next_sync = Instant::now() + SYNC_CHECK;
        let mut events = Events::with_capacity(64);
        loop {
            let now = Instant::now();
            if now >= next_sync {
                reflector.read_clock();
                next_sync = now + SYNC_CHECK;
                if let Some(c) = control.as_deref_mut() {
                    let now_ns = reflector.now_ns();
                    c.sweep(&mut reflector.granted, self.poll.registry(), now_ns);
                }
            }
            if let Some(name) = clock.close_due(now) {
                let active = reflector.settle_sessions(listeners);
                for (k, l) in listeners.iter_mut().enumerate() {
                    let w = l.stats.close_window();
                    stats.write(l, &w, &name, active.as_ref().map(|a| a[k]))?;
                }
                if let Some(c) = control.as_deref_mut() {
                    stats.write_control(c, &name)?;
                }
                stats.out.end_window()?;
            }
            let busy = listeners.iter().any(|l| l.ready);
            let timeout = if busy {
                Some(Duration::ZERO)
            } else {
                let until = clock.next().map_or(next_sync, |s| s.min(next_sync));
                Some(until.saturating_duration_since(Instant::now()))
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("poll failed"),
            }
            for ev in events.iter() {
                match wake(ev.token(), listeners.len()) {
                    Wake::Signal => {
                        if self.signals.pending().next().is_some() {
                            return Ok(());
                        }
                    }
                    Wake::Listener(i) => listeners[i].ready = true,
                    Wake::Control => {
                        if let Some(c) = control.as_deref_mut() {
                            let now_ns = reflector.now_ns();
                            c.ready(
                                &mut reflector.granted,
                                self.poll.registry(),
                                ev.token(),
                                now_ns,
                            );
                        }
                    }
                    Wake::Unknown => {}
                }
            }
            for (k, l) in listeners.iter_mut().enumerate() {
                if l.ready {
                    l.ready = reflector.serve(l, k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_the_signal_and_each_listener() {
        assert_eq!(wake(SIGNAL_TOKEN, 2), Wake::Signal);
        assert_eq!(wake(Token(FIRST_SOCKET_TOKEN), 2), Wake::Listener(0));
        assert_eq!(wake(Token(FIRST_SOCKET_TOKEN + 1), 2), Wake::Listener(1));
        assert_eq!(wake(Token(FIRST_SOCKET_TOKEN + 2), 2), Wake::Unknown);
        assert_eq!(wake(Token(FIRST_SOCKET_TOKEN), 0), Wake::Unknown);
        assert_eq!(wake(Token(FIRST_CONTROL_TOKEN + 5), 2), Wake::Control);
    }
}
