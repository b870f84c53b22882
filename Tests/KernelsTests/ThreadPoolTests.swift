import CLlavaUHD
import LlavaUHD
import Synchronization
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The C thread pool behind `parallelFor` (Sources/CLlavaUHD/thread_pool.c).
@Suite struct ThreadPoolTests {
    /// Runs a loop and returns how many times each index ran.
    static func counts(_ n: Int, threads: Int) -> [Int] {
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
        slots.initialize(repeating: 0, count: max(n, 1))
        defer { slots.deallocate() }
        let s = SendablePointer(slots)
        parallelFor(n, threads: threads) { i in s.p[i] += 1 }
        return Array(UnsafeBufferPointer(start: slots, count: n))
    }

    @Test(arguments: [0, 1, 2, 3, 7, 64, 1000, 100_003])
    func runsEveryIndexExactlyOnce(count: Int) {
        for threads in [1, 2, 3, 8] {
            let c = Self.counts(count, threads: threads)
            #expect(c.allSatisfy { $0 == 1 }, "count \(count), threads \(threads)")
        }
    }

    @Test func resultsDoNotDependOnThreads() {
        // Each task writes a value derived only from its index; any thread count gives the same array.
        func run(_ threads: Int) -> [Float] {
            var out = [Float](repeating: 0, count: 4099)
            out.withUnsafeMutableBufferPointer { b in
                let p = SendablePointer(b.baseAddress!)
                parallelFor(4099, threads: threads) { i in
                    var acc: Float = 0
                    for k in 0..<200 { acc += sinf(Float(i * 200 + k) * 0.001) }
                    p.p[i] = acc
                }
            }
            return out
        }
        let one = run(1)
        for t in [2, 3, 5, 16] { #expect(firstDifference(run(t), one) == nil, "threads \(t)") }
    }

    @Test func nestedCallsRunInline() {
        let outer = 8, inner = 300
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: outer * inner)
        slots.initialize(repeating: 0, count: outer * inner)
        defer { slots.deallocate() }
        let s = SendablePointer(slots)
        parallelFor(outer, threads: 2) { i in
            let me = pthread_self()
            parallelFor(inner, threads: 2) { j in
                s.p[i * inner + j] += pthread_equal(pthread_self(), me) != 0 ? 1 : 100
            }
        }
        #expect(UnsafeBufferPointer(start: slots, count: outer * inner).allSatisfy { $0 == 1 })
    }

    @Test func concurrentCallersFromSeveralThreads() {
        // Several host threads run loops at the same time: each loop either gets the pool or runs
        // inline, and every index of every loop runs exactly once.
        let failures = Atomic<Int>(0)
        onThreads(4) { _ in
            for round in 0..<150 {
                let n = 50 + round % 37
                if !ThreadPoolTests.counts(n, threads: 2).allSatisfy({ $0 == 1 }) {
                    failures.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }

    @Test func busyPoolMakesOtherCallersRunInline() {
        // Thread A holds the pool inside a loop whose two tasks wait for a release flag (both
        // started = they run on two threads, so A owns the pool); meanwhile this thread's loop must
        // run entirely on this thread, and finish. (If another test holds the pool when A starts,
        // A runs inline and only one task starts: release and try again.)
        final class Flags: @unchecked Sendable {
            let started = Atomic<Int>(0)
            let release = Atomic<Bool>(false)
        }
        for _ in 0..<50 {
            let flags = Flags()
            var holder = pthread_t()
            let box = Unmanaged.passRetained(flags).toOpaque()
            pthread_create(&holder, nil, { arg in
                let flags = Unmanaged<Flags>.fromOpaque(arg!).takeRetainedValue()
                parallelFor(2, threads: 2) { _ in
                    flags.started.add(1, ordering: .acquiringAndReleasing)
                    while !flags.release.load(ordering: .acquiring) { sched_yield() }
                }
                return nil
            }, box)
            var waited = 0
            while flags.started.load(ordering: .acquiring) < 2, waited < 2000 {
                usleep(1000)
                waited += 1
            }
            guard flags.started.load(ordering: .acquiring) == 2 else {
                flags.release.store(true, ordering: .releasing)
                pthread_join(holder, nil)
                continue
            }
            let me = pthread_self()
            let elsewhere = Atomic<Int>(0)
            parallelFor(500, threads: 2) { _ in
                if pthread_equal(pthread_self(), me) == 0 { elsewhere.add(1, ordering: .relaxed) }
            }
            flags.release.store(true, ordering: .releasing)
            pthread_join(holder, nil)
            #expect(elsewhere.load(ordering: .relaxed) == 0)
            return
        }
        Issue.record("the pool was never free long enough to set up the test")
    }

    @Test func manyShortLoopsInARow() {
        // The decode pattern: thousands of tiny loops; workers spin between them, then sleep.
        var total = 0
        for round in 0..<5000 {
            let c = Self.counts(2 + round % 5, threads: 2)
            total += c.reduce(0, +) - c.count
        }
        #expect(total == 0)
        #expect(luhd_pool_workers() >= 1)
    }
}
