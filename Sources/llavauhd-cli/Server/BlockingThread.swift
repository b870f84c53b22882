#if canImport(Glibc)
import Glibc
#endif

/// Runs blocking work (image decoding, the model's compute) on a thread of its own, so that it
/// never holds one of Swift concurrency's few cooperative threads or a NIO event loop. The
/// server runs at most `--parallel` computations at once, so these threads stay few.
enum BlockingThread {
    private final class Work {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Stack of each thread (the model's code keeps large arrays on the heap, not the stack).
    static let stackBytes = 8 << 20

    /// Starts `body` on a new detached thread. Throws `APIError` (500) when no thread can be made.
    static func start(_ body: @escaping @Sendable () -> Void) throws(APIError) {
        let work = Unmanaged.passRetained(Work(body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, stackBytes)
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { argument in
            guard let argument else { return nil }
            Unmanaged<Work>.fromOpaque(argument).takeRetainedValue().body()
            return nil
        }, work)
        guard rc == 0 else {
            Unmanaged<Work>.fromOpaque(work).release()
            throw APIError(status: .internalServerError, message: "cannot start a thread (error \(rc))", type: "server_error")
        }
    }

    /// The value of `body`, computed on a thread of its own.
    static func run<T: Sendable>(_ body: @escaping @Sendable () -> Result<T, APIError>) async throws(APIError) -> T {
        let result: Result<T, APIError> = await withCheckedContinuation { continuation in
            do throws(APIError) {
                try start { continuation.resume(returning: body()) }
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        return try result.get()
    }
}
