import Glibc

/// A joinable pthread running a closure. Threads inherit the creator's signal mask, so
/// one started after `Signals.blockTerminatingSignals()` never takes SIGINT/SIGTERM.
final class WorkerThread: @unchecked Sendable {
    private var handle: pthread_t = 0
    private var started = false
    private let body: @Sendable () -> Void

    init(body: @escaping @Sendable () -> Void) {
        self.body = body
    }

    func start() throws(RunError) {
        let unmanaged = Unmanaged.passRetained(self)
        let r = pthread_create(&handle, nil, { arg in
            let thread = Unmanaged<WorkerThread>.fromOpaque(arg!).takeRetainedValue()
            thread.body()
            return nil
        }, unmanaged.toOpaque())
        guard r == 0 else {
            unmanaged.release()
            throw RunError("pthread_create failed: \(String(cString: strerror(r)))")
        }
        started = true
    }

    func join() {
        guard started else { return }
        started = false
        pthread_join(handle, nil)
    }
}
