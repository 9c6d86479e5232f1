import Glibc

/// Why a snapshot could not be written or read. Every case names what was wrong; the
/// command line turns them into one line and an exit status.
public enum SnapshotError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A file of the snapshot is shorter than its contents say (`what` was being read).
    case truncated(String)
    /// A file of the snapshot does not have the expected form.
    case malformed(String)
    /// A file's checksum differs from the one in the manifest: it was changed or damaged.
    case checksumMismatch(file: String)
    /// The snapshot was written by another format version.
    case formatVersion(found: Int, expected: Int)
    /// The snapshot does not fit this host or these resources (another svm version, CPU
    /// features, a disk that changed since the snapshot).
    case incompatible(String)
    /// The VM cannot be saved as it is configured (a device that has no saved state yet).
    case unsupported(String)
    /// A host call failed.
    case io(operation: String, errno: Int32)

    public var description: String {
        switch self {
        case let .truncated(what): "snapshot is truncated: \(what) is incomplete"
        case let .malformed(what): "snapshot is malformed: \(what)"
        case let .checksumMismatch(file): "snapshot file '\(file)' does not match its checksum (changed or damaged)"
        case let .formatVersion(found, expected): "snapshot format \(found) is not this svm's format \(expected)"
        case let .incompatible(why): why
        case let .unsupported(why): why
        case let .io(operation, e): "\(operation): \(String(cString: strerror(e))) (errno \(e))"
        }
    }

    public static func last(_ operation: String) -> SnapshotError { .io(operation: operation, errno: errno) }
}
