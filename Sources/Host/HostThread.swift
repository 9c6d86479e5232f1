import CKVM
import Glibc

/// A joinable POSIX thread running a Swift closure: svm's one thread type. Plain pthreads,
/// so that each vCPU has a thread of its own that can be signalled out of KVM_RUN, and so
/// that threads inherit the creator's signal mask (one started after the terminating
/// signals are blocked never takes SIGINT/SIGTERM).
public final class HostThread: @unchecked Sendable {
    // Sendable invariant: `handle` and `started` are written by the creating thread in
    // start() and read by it in join()/signal(); the body runs on the new thread only.
    private var handle: pthread_t = 0
    private var started = false
    private let name: String
    private let body: @Sendable () -> Void

    /// `name` (at most 15 bytes are kept) shows in /proc/PID/task/*/comm and in debuggers.
    public init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }

    public func start() throws(HostError) {
        let unmanaged = Unmanaged.passRetained(self)
        let r = pthread_create(&handle, nil, { arg in
            let thread = Unmanaged<HostThread>.fromOpaque(arg!).takeRetainedValue()
            _ = ckvm_set_thread_name(thread.name)
            thread.body()
            return nil
        }, unmanaged.toOpaque())
        guard r == 0 else {
            unmanaged.release()
            throw HostError("pthread_create (\(name))", errno: r)
        }
        started = true
    }

    public func signal(_ signo: Int32) {
        guard started else { return }
        pthread_kill(handle, signo)
    }

    /// Waits for the thread to end; does nothing if it never started or was joined.
    public func join() {
        guard started else { return }
        started = false
        pthread_join(handle, nil)
    }
}
