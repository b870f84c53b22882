#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the monotonic clock (`CLOCK_MONOTONIC`): for durations only, never for dates.
/// The one wall clock of the package: the library's timings, the CLI's, the benchmarks' and the
/// tests' all read it.
package func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Seconds of CPU time the calling thread has run (`CLOCK_THREAD_CPUTIME_ID`): for rates that
/// time slices given to other processes (or other vCPUs of the host) do not change, such as a
/// benchmark's per-core peak on a shared machine.
package func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
