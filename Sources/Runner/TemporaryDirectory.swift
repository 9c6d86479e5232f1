import Glibc
import Host

/// A private directory (mode 0700) from mkdtemp under $TMPDIR, or /tmp. `remove()`
/// deletes it with everything in it; it is idempotent, and the owner calls it on every
/// way out (deinit is a last resort, not the plan).
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String
    private var removed = false

    public static func baseDirectory(environment: [String: String]) -> String {
        if let t = environment["TMPDIR"], !t.isEmpty { return t }
        return "/tmp"
    }

    public init(prefix: String = "svm-run", environment: [String: String]) throws(RunError) {
        var base = Self.baseDirectory(environment: environment)
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw RunError("cannot create a temporary directory in \(base)", .last("mkdtemp"))
        }
        path = String(cString: p)
    }

    deinit { remove() }

    public func remove() {
        guard !removed else { return }
        removed = true
        Self.removeTree(path)
    }

    /// Deletes `path` and, if it is a directory (not a symlink to one), all it contains.
    static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in directoryEntries(path) { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Names in a directory except "." and "..", sorted; empty if it cannot be read.
    static func directoryEntries(_ path: String) -> [String] {
        (try? listDirectory(path).names) ?? []
    }

    /// Names in a directory except "." and "..", sorted, and how many names were left out
    /// because they are not UTF-8 (Swift strings could not name them exactly). Throws the
    /// failed opendir/readdir.
    static func listDirectory(_ path: String) throws(HostError) -> (names: [String], skipped: Int) {
        guard let dir = opendir(path) else { throw .last("opendir") }
        defer { closedir(dir) }
        var names: [String] = []
        var skipped = 0
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw .last("readdir") }
                break
            }
            let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            guard let name = String(validating: bytes, as: UTF8.self) else {
                skipped += 1
                continue
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return (names.sorted(), skipped)
    }
}
