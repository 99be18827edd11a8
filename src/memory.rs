//! The process's memory policy, set before anything large is allocated.

/// Refuses transparent huge pages for the whole process. mimalloc asks the kernel for them
/// (`madvise(MADV_HUGEPAGE)`) on its memory, so each first touch faulted in and zeroed 2 MiB
/// (a third of a joining node's CPU in a profile) and a node's RSS counted whole huge pages
/// that held a few connections' small buffers (BENCHMARKS.md, "Transparent huge pages").
/// The kernel flag covers every allocation made after it, whoever makes it, however the server
/// is started; mimalloc's first segment comes before `main`, which is why the scripts and the
/// Dockerfile also set `MIMALLOC_ALLOW_THP=0` (4 MiB measured, docs/deployment.md, "Memory"). Failing is
/// not fatal: the node works, only with more memory, so it is logged.
pub fn refuse_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(%error, "prctl(PR_SET_THP_DISABLE) failed: memory may use transparent huge pages");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_flag_is_set_for_the_process() {
        super::refuse_transparent_huge_pages();
        // The kernel reports the flag back; a failed call would leave it false.
        assert!(rustix::thread::transparent_huge_pages_are_disabled().expect("PR_GET_THP_DISABLE"));
    }
}
