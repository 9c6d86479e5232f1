import Glibc

/// A failed host call: the operation (a syscall or ioctl, with what it acted on) and its
/// errno. The one error type of every layer that talks to the kernel (KVM, files, sockets,
/// threads); only SVMCommand turns it into a message and an exit status.
public struct HostError: Error, Equatable, CustomStringConvertible, Sendable {
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// The error of the call that just failed, from the thread's errno.
    public static func last(_ operation: String) -> HostError { HostError(operation, errno: Glibc.errno) }

    public var description: String {
        "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Runs an ioctl-like call and turns -1 into a HostError carrying errno. EINTR is retried
/// unless `retryEINTR` is false (KVM_RUN's EINTR is meaningful: a signal asked the vCPU
/// to stop).
@inline(__always)
public func check(_ operation: @autoclosure () -> String, retryEINTR: Bool = true,
                  _ call: () -> Int32) throws(HostError) -> Int32 {
    while true {
        let r = call()
        if r >= 0 { return r }
        let e = Glibc.errno
        if e == EINTR && retryEINTR { continue }
        throw HostError(operation(), errno: e)
    }
}
