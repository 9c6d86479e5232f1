import Glibc

/// The files of a snapshot directory and how they are written: into `DIR.partial-PID`
/// first, each file fsynced, then renamed to DIR, so a directory named DIR is always a
/// whole snapshot (a crash while saving leaves only the `.partial` one).
public enum SnapshotFiles {
    public static let manifest = "manifest"
    public static let state = "state"
    public static let memory = "memory"

    /// Makes the partial directory for `path` (which must not exist yet); returns its path.
    public static func beginWriting(_ path: String) throws(SnapshotError) -> String {
        var st = stat()
        guard lstat(path, &st) != 0 else { throw .incompatible("\(path) already exists; a snapshot goes into a new directory") }
        let partial = "\(path).partial-\(getpid())"
        guard mkdir(partial, 0o700) == 0 else { throw .last("mkdir \(partial)") }
        return partial
    }

    /// A new file in `directory`, for writing (close-on-exec).
    public static func create(_ directory: String, _ name: String) throws(SnapshotError) -> Int32 {
        let fd = open("\(directory)/\(name)", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .last("create \(directory)/\(name)") }
        return fd
    }

    public static func write(_ bytes: [UInt8], to directory: String, _ name: String) throws(SnapshotError) {
        let fd = try create(directory, name)
        defer { close(fd) }
        var failure: SnapshotError?
        bytes.withUnsafeBytes { p in
            guard let base = p.baseAddress else { return }
            do throws(SnapshotError) { try SparseMemory.writeAll(fd, base, count: p.count, at: 0) } catch { failure = error }
        }
        if let failure { throw failure }
        try sync(fd, "\(directory)/\(name)")
    }

    public static func sync(_ fd: Int32, _ what: String) throws(SnapshotError) {
        guard fsync(fd) == 0 else { throw .last("fsync \(what)") }
    }

    /// Makes the partial directory the snapshot: fsync it, rename it, fsync the parent.
    public static func commit(_ partial: String, as path: String) throws(SnapshotError) {
        try syncDirectory(partial)
        guard rename(partial, path) == 0 else { throw .last("rename \(partial) to \(path)") }
        let parent = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        try syncDirectory(parent.isEmpty ? "/" : parent)
    }

    /// Removes a partial directory after a failure (best effort: the files svm made).
    public static func abandon(_ partial: String) {
        for name in [manifest, state, memory] { unlink("\(partial)/\(name)") }
        rmdir(partial)
    }

    static func syncDirectory(_ path: String) throws(SnapshotError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open \(path)") }
        defer { close(fd) }
        try sync(fd, path)
    }

    /// The whole of a small file of the snapshot (manifest, state), at most `limit` bytes.
    public static func read(_ directory: String, _ name: String, limit: Int = 64 << 20) throws(SnapshotError) -> [UInt8] {
        let path = "\(directory)/\(name)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw .malformed("\(path) is missing") }
            throw .last("open \(path)")
        }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .last("read \(path)")
            }
            if n == 0 { return result }
            result += chunk[..<n]
            guard result.count <= limit else { throw .malformed("\(path) is larger than \(limit) bytes") }
        }
    }
}
