//! Gives the memory the C allocator keeps after the program freed it back
//! to the system.
//!
//! glibc keeps freed memory inside its per-thread heaps for reuse and
//! returns it only from the top of a heap, so after a burst (a flood of
//! connections on aurinko-sync's listener) the process stays as large as at
//! its peak. `malloc_trim(0)` hands every free page back. No mainstream
//! crate wraps it safely; this crate is that wrapper, a crate of its own so
//! that aurinko-sync itself can forbid `unsafe` outright.

/// Asks glibc to return the free pages of every heap to the system; says
/// whether any came back. It walks and locks each heap in turn: call it off
/// latency-sensitive threads. Elsewhere than glibc it does nothing: other
/// allocators return memory themselves or have no such call.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn give_back() -> bool {
    // SAFETY: malloc_trim takes no pointer and touches only the allocator's
    // own state, under its locks (MT-Safe per malloc_trim(3)).
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_freed_below_a_live_block_goes_back() {
        // 8 MiB freed below a block still in use: free() cannot return it
        // (it is not at the top of the heap); malloc_trim can.
        let blocks: Vec<Vec<u8>> = (0..2048).map(|i| vec![i as u8; 4096]).collect();
        let live = vec![1u8; 4096];
        drop(blocks);
        let gave_back = super::give_back();
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(gave_back, "malloc_trim returned nothing after 8 MiB were freed");
        }
        assert_eq!(live.len(), 4096);
    }
}
