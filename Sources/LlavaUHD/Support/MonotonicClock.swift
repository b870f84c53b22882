#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the monotonic clock (`CLOCK_MONOTONIC`): for durations only, never for dates.
/// The one clock of the package: the library's timings, the CLI's, the benchmarks' and the
/// tests' all read it.
package func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU time of the whole process (`CLOCK_PROCESS_CPUTIME_ID`: all its threads, spin-waits
/// included), in seconds: for benchmarks on a shared machine, where wall time also counts the
/// time other processes held the cores.
package func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
