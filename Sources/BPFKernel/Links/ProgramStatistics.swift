/// The kernel's program run statistics (`run_time_ns`, `run_cnt` in `ProgramInfo`), which cost a
/// clock read per run and are off by default.
public enum ProgramStatistics {
    /// Turns run-time statistics on (BPF_ENABLE_STATS, BPF_STATS_RUN_TIME) for every program on
    /// the system, until the returned fd is closed; with several holders, until the last closes
    /// it. Needs CAP_SYS_ADMIN.
    public static func enable() throws(BPFError) -> BPFFD {
        try BPFSys.enableStats(type: BPFConstants.StatsType.runTime)
    }
}
