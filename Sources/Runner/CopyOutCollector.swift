import Glibc
import Host
import Synchronization

/// Collects the copy-out archive the guest sends on the fourth console (guest /dev/hvc3)
/// into an anonymous temporary file, on the device thread. The guest is hostile and could
/// send without end (a sparse file of any size costs it nothing), so at most `limit`
/// bytes are kept: past that the archive is marked oversized and will not be applied.
final class CopyOutCollector: Sendable {
    /// The most a guest can make svm store, and then write into the volumes: 1 GiB.
    static let limit: UInt64 = 1 << 30

    private struct State {
        var written: UInt64 = 0
        var failure: String?
    }

    let fd: Int32
    private let limitBytes: UInt64
    private let state = Mutex(State())

    /// The file is unlinked as soon as it is created, so no way out of svm leaves it behind.
    init(environment: [String: String], limit: UInt64 = CopyOutCollector.limit) throws(RunError) {
        let base = TemporaryDirectory.baseDirectory(environment: environment)
        var template = Array("\(base)/svm-copy-out.XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if fd >= 0 {
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        guard fd >= 0 else {
            throw RunError("cannot create the copy-out file in \(base)", .last("mkstemp"))
        }
        self.fd = fd
        limitBytes = limit
    }

    deinit { close(fd) }

    /// Why the archive is unusable (too big, or the host could not store it), if it is.
    var failure: String? { state.withLock { $0.failure } }

    /// Called with each piece of hvc3 output, in order.
    func receive(_ bytes: [UInt8]) {
        state.withLock { s in
            guard s.failure == nil else { return }
            guard s.written + UInt64(bytes.count) <= limitBytes else {
                s.failure = "the guest sent more than \(limitBytes >> 20) MiB of volume contents (the copy-out limit)"
                return
            }
            do throws(HostError) { try FileIO.write(fd, bytes, what: "write copy-out file") } catch {
                s.failure = "\(error)"
                return
            }
            s.written += UInt64(bytes.count)
        }
    }
}
