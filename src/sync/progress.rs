//! Live counters per collection, shared by the drivers and whoever displays
//! them (the terminal progress view, summaries, tests).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub records: u64,
    pub pages: u64,
    pub done: bool,
}

#[derive(Clone, Default)]
pub struct Progress {
    entries: Arc<Mutex<BTreeMap<String, Entry>>>,
}

impl Progress {
    pub fn start(&self, name: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_string()).or_default().done = false;
    }

    pub fn page(&self, name: &str, records: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(name.to_string()).or_default();
        entry.records += records;
        entry.pages += 1;
    }

    pub fn finish(&self, name: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_string()).or_default().done = true;
    }

    pub fn snapshot(&self) -> BTreeMap<String, Entry> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
