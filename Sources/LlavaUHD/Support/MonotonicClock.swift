#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the monotonic clock (`CLOCK_MONOTONIC`): for durations only, never for dates.
/// The one wall clock of the package: the library's timings, the CLI's, the benchmarks' and the
/// tests' all read it.
package func monotonicSeconds() -> Double { seconds(on: CLOCK_MONOTONIC) }

/// Seconds of CPU time the calling thread has run (`CLOCK_THREAD_CPUTIME_ID`): for rates that
/// time slices given to other processes (or other vCPUs of the host) do not change, such as a
/// benchmark's per-core peak on a shared machine.
package func threadCPUSeconds() -> Double { seconds(on: CLOCK_THREAD_CPUTIME_ID) }

/// CPU time of the whole process (`CLOCK_PROCESS_CPUTIME_ID`: all its threads, spin-waits
/// included), in seconds: for benchmarks on a shared machine, where wall time also counts the
/// time other processes held the cores.
package func processCPUSeconds() -> Double { seconds(on: CLOCK_PROCESS_CPUTIME_ID) }

/// The reading of `clock` in seconds.
private func seconds(on clock: clockid_t) -> Double {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
