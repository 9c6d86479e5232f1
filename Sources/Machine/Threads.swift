import Glibc

/// A joinable POSIX thread running a Swift closure. svm uses plain pthreads so that each
/// vCPU has a thread of its own that can be signalled out of KVM_RUN.
final class HostThread: @unchecked Sendable {
    private(set) var handle: pthread_t = 0
    private let body: @Sendable () -> Void

    init(body: @escaping @Sendable () -> Void) {
        self.body = body
    }

    func start() throws(MachineError) {
        let unmanaged = Unmanaged.passRetained(self)
        let r = pthread_create(&handle, nil, { arg in
            let thread = Unmanaged<HostThread>.fromOpaque(arg!).takeRetainedValue()
            thread.body()
            return nil
        }, unmanaged.toOpaque())
        if r != 0 {
            unmanaged.release()
            throw .host(.init("pthread_create", errno: r))
        }
    }

    func signal(_ signo: Int32) {
        pthread_kill(handle, signo)
    }

    func join() {
        pthread_join(handle, nil)
    }
}
