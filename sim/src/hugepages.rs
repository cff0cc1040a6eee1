//! Transparent huge pages for the simulator's heap, by restarting the process once with
//! glibc's `glibc.malloc.hugetlb=1` tunable.
//!
//! Why: at a thousand nodes each event lands on a node whose memory (hundreds of KB,
//! spread over a dozen allocations) no recent event touched, so on 4 KiB pages almost
//! every event also misses the TLB, and on a VM each miss is a two-dimensional page
//! walk. With the tunable, glibc's malloc asks the kernel (`madvise(MADV_HUGEPAGE)`) for
//! 2 MiB pages, which the kernel grants where `/sys/kernel/mm/transparent_hugepage/
//! enabled` is `madvise` or `always`; a 1,000-node world's few hundred MB then fit in
//! the TLB. Measured with `cargo bench -p rumor-sim --bench steady_cpu` (sim/README.md,
//! "Speed"). The simulation itself does not change: same events, same `trace_hash`.
//!
//! glibc reads its tunables once, at start-up, from the environment, so the only way to
//! set one from inside is to start again with it set (`exec`: same process, same
//! arguments). Set `RUMOR_SIM_HUGEPAGES=0` to run without; nothing happens off
//! Linux/glibc, or when `GLIBC_TUNABLES` is already set (the caller chose).

/// The environment variable that turns the restart off (`0`).
pub const OPT_OUT: &str = "RUMOR_SIM_HUGEPAGES";

/// Restarts this process with huge pages for malloc, if that applies (see the module
/// documentation); returns only when it does not (or the restart failed, which leaves
/// the process running as it was).
pub fn enable() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("GLIBC_TUNABLES").is_some()
            || std::env::var_os(OPT_OUT).is_some_and(|v| v == "0")
        {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        // `exec` returns only on failure; then run on without huge pages.
        let _ = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
            .exec();
    }
}
