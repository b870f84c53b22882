/// Wall time and arithmetic per named stage of a computation, for benchmarks: a stage that
/// finds a clock in its `ComputeContext` (`ComputeContext.stageClock`) times its parts into
/// it, with the multiply-adds × 2 of each part derived from the shapes it ran on, so that a
/// benchmark can print each part's share of the machine's peak. Without a clock nothing is
/// measured.
///
/// Used by one thread at a time (the thread that called the stage; the parallel loops inside
/// a part are not timed separately).
package final class StageClock: @unchecked Sendable {
    package struct Entry: Sendable {
        package var name: String
        package var seconds: Double
        /// CPU time of the process during the stage (`processCPUSeconds`: all threads, the
        /// thread pool's spin-waits included), seconds.
        package var cpuSeconds: Double
        /// Floating-point (or integer) operations: multiply-adds × 2.
        package var operations: Double
        package var calls: Int
    }

    /// Stages in the order they were first timed.
    package private(set) var entries: [Entry] = []

    package init() {}

    /// Runs `body`, adding its wall time and `operations` to the stage `name`.
    package func measure<T, E: Error>(_ name: String, operations: Double = 0,
                                      _ body: () throws(E) -> T) throws(E) -> T {
        let t0 = monotonicSeconds(), c0 = processCPUSeconds()
        let result = try body()
        add(name, seconds: monotonicSeconds() - t0, cpuSeconds: processCPUSeconds() - c0, operations: operations)
        return result
    }

    /// Adds `seconds`, `cpuSeconds` and `operations` to the stage `name`.
    package func add(_ name: String, seconds: Double, cpuSeconds: Double, operations: Double) {
        if let i = entries.firstIndex(where: { $0.name == name }) {
            entries[i].seconds += seconds
            entries[i].cpuSeconds += cpuSeconds
            entries[i].operations += operations
            entries[i].calls += 1
        } else {
            entries.append(Entry(name: name, seconds: seconds, cpuSeconds: cpuSeconds, operations: operations, calls: 1))
        }
    }

    /// Forgets every stage.
    package func reset() { entries = [] }
}

extension ComputeContext {
    /// `clock.measure` when the context has a clock, `body()` alone otherwise.
    @inline(__always)
    func timed<T, E: Error>(_ name: String, operations: @autoclosure () -> Double = 0,
                            _ body: () throws(E) -> T) throws(E) -> T {
        guard let clock = stageClock else { return try body() }
        return try clock.measure(name, operations: operations(), body)
    }
}
