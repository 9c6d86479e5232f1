import Glibc

/// A failed KVM operation: which ioctl or syscall, and the errno it returned.
public struct KVMError: Error, Equatable, CustomStringConvertible {
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Runs an ioctl-like call and turns -1 into a KVMError carrying errno. EINTR is retried
/// except for KVM_RUN, whose EINTR is meaningful (a signal asked the vCPU to stop).
@inline(__always)
public func check(_ operation: @autoclosure () -> String, retryEINTR: Bool = true,
           _ call: () -> Int32) throws(KVMError) -> Int32 {
    while true {
        let r = call()
        if r >= 0 { return r }
        let e = Glibc.errno
        if e == EINTR && retryEINTR { continue }
        throw KVMError(operation(), errno: e)
    }
}
