//! Where lwatch's records go: through the filter, to stdout (and `--exec`), counted for `-c`.
#![forbid(unsafe_code)]

use super::exec;
use super::filter::Filter;
use crate::output::RecordWriter;
use crate::record::{Body, Record, Tags};
use anyhow::Result;
use std::sync::Arc;
use std::time::SystemTime;

const TOOL: &str = "lwatch";

/// Writes records through the filter and counts the changes.
pub(super) struct Sink {
    pub(super) out: RecordWriter<std::io::Stdout>,
    pub(super) tags: Option<Arc<Tags>>,
    pub(super) filter: Filter,
    pub(super) changes: u64,
    pub(super) limit: Option<u64>,
    pub(super) exec: Option<exec::Exec>,
    pub(super) line: Vec<u8>,
}

impl Sink {
    pub(super) fn done(&self) -> bool {
        self.limit.is_some_and(|n| self.changes >= n)
    }

    /// Writes `bodies` (stopping at the count); `change`: they count towards `-c`.
    pub(super) fn write(&mut self, bodies: &mut Vec<Body>, change: bool) -> Result<()> {
        let ts = SystemTime::now();
        for body in bodies.drain(..) {
            if self.done() {
                break;
            }
            if !self.filter.pass(&body) {
                continue;
            }
            let counts = change && !matches!(body, Body::WatchResync(_));
            let record = Record {
                tool: TOOL,
                ts,
                tags: self.tags.clone(),
                body,
            };
            self.out.write(&record)?;
            if let Some(exec) = &mut self.exec {
                self.line.clear();
                crate::output::json_line(&record, &mut self.line)?;
                self.line.push(b'\n');
                exec.send(self.line.clone());
            }
            if counts {
                self.changes += 1;
            }
        }
        Ok(())
    }
}
