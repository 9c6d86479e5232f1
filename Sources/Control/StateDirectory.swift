import Glibc
import Host

/// Where managed VMs keep their state: `ROOT/NAME/` (0700) with `lock`, `pid`,
/// `config.json`, `control.sock`, `console.log` (and `.1`), and `exit.json` once the VM
/// has ended. ROOT is `$SVM_RUN_DIR`, else `/run/svm` for root, else
/// `$XDG_RUNTIME_DIR/svm`, else `/tmp/svm-UID`.
///
/// Liveness never trusts a pid (pids are reused): the VM's process holds an exclusive
/// flock on `lock` for its whole life, so "someone holds the lock" is "the VM lives".
public struct StateDirectory: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    public static func root(environment: [String: String], euid: uid_t = geteuid()) -> String {
        if let dir = environment["SVM_RUN_DIR"], !dir.isEmpty { return dir }
        if euid == 0 { return "/run/svm" }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty { return runtime + "/svm" }
        return "/tmp/svm-\(euid)"
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case invalidName(String)
        /// A live VM has this name.
        case nameInUse(String)
        case noSuchVM(String)
        case running(String)
        case unsafe(path: String, why: String)
        case host(HostError)

        public var description: String {
            switch self {
            case let .invalidName(n): "\(n): not a VM name (1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit)"
            case let .nameInUse(n): "a VM named \(n) is running (pick another --name, or svm stop \(n))"
            case let .noSuchVM(n): "no VM named \(n)"
            case let .running(n): "VM \(n) is running (svm stop \(n) first, or svm rm -f \(n))"
            case let .unsafe(path, why): "state directory \(path): \(why)"
            case let .host(e): "\(e)"
            }
        }
    }

    public func path(of name: String) -> String { root + "/" + name }

    /// Creates ROOT (0700) if missing, and checks it is ours and not writable by others.
    func prepareRoot() throws(Failure) {
        if mkdir(root, 0o700) != 0 && errno != EEXIST {
            // A missing parent (a fresh /run, an XDG dir not created yet): one level more.
            if errno == ENOENT, let slash = root.lastIndex(of: "/"), slash != root.startIndex {
                _ = mkdir(String(root[..<slash]), 0o755)
                if mkdir(root, 0o700) != 0 && errno != EEXIST { throw .host(.last("mkdir \(root)")) }
            } else {
                throw .host(.last("mkdir \(root)"))
            }
        }
        try Self.checkOwned(root)
    }

    static func checkOwned(_ path: String) throws(Failure) {
        var st = stat()
        guard lstat(path, &st) == 0 else { throw .host(.last("stat \(path)")) }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw .unsafe(path: path, why: "not a directory") }
        guard st.st_uid == geteuid() else { throw .unsafe(path: path, why: "owned by uid \(st.st_uid), not by you (uid \(geteuid()))") }
        guard st.st_mode & 0o022 == 0 else { throw .unsafe(path: path, why: "writable by group or others") }
    }

    /// Takes `name` for a new VM: creates or reuses its directory and takes the lock. A
    /// live VM of that name (its lock held) is `nameInUse`; a dead one's files are cleared.
    public func claim(_ name: String) throws(Failure) -> VMClaim {
        guard VMNames.isValid(name) else { throw .invalidName(name) }
        try prepareRoot()
        let dir = path(of: name)
        let fresh = mkdir(dir, 0o700) == 0
        if !fresh && errno != EEXIST { throw .host(.last("mkdir \(dir)")) }
        try Self.checkOwned(dir)
        let lockPath = dir + "/lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .host(.last("open \(lockPath)")) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let e = errno
            close(fd)
            if e == EWOULDBLOCK { throw .nameInUse(name) }
            throw .host(HostError("flock \(lockPath)", errno: e))
        }
        // A dead VM's leftovers go; the lock file stays (we hold it). A directory we just
        // made has none (and every VM's start-up would pay a scan for nothing).
        if !fresh { VMClaim.removeFiles(in: dir, lock: false) }
        return VMClaim(name: name, directory: dir, lockFD: fd)
    }

    /// Every VM directory under ROOT, live or not, sorted by name.
    public func list() -> [VMRecord] {
        guard let d = opendir(root) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if VMNames.isValid(name) { names.append(name) }
        }
        return names.sorted().compactMap { record(of: $0) }
    }

    /// What the directory says about VM `name`; nil if there is none.
    public func record(of name: String) -> VMRecord? {
        guard VMNames.isValid(name) else { return nil }
        let dir = path(of: name)
        var st = stat()
        guard lstat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { return nil }
        let live = Self.isLocked(dir + "/lock")
        let pid = (try? FileIO.readFile(dir + "/pid", limit: 64)).flatMap { Int32(String(decoding: $0.filter { $0 >= 0x30 && $0 <= 0x39 }, as: UTF8.self)) }
        let exit = (try? FileIO.readFile(dir + "/exit.json", limit: 64 << 10)).flatMap { try? JSONParser.parse($0) }.flatMap(ExitRecord.init(json:))
        let config = try? FileIO.readFile(dir + "/config.json", limit: 1 << 20)
        return VMRecord(name: name, directory: dir, live: live, pid: pid, exit: live ? nil : exit, config: config)
    }

    /// True while some process holds the lock (probed with a non-blocking shared lock).
    static func isLocked(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }

    /// Removes a VM's directory; refused while it lives.
    public func remove(_ name: String) throws(Failure) {
        guard let record = record(of: name) else { throw .noSuchVM(name) }
        guard !record.live else { throw .running(name) }
        VMClaim.removeFiles(in: record.directory, lock: true)
        guard rmdir(record.directory) == 0 else { throw .host(.last("rmdir \(record.directory)")) }
    }
}

/// A live VM's hold on its directory. The lock is held for as long as `lockFD` (or a
/// duplicate of it in a child process) is open.
public struct VMClaim: Sendable {
    public let name: String
    public let directory: String
    public let lockFD: Int32

    public init(name: String, directory: String, lockFD: Int32) {
        self.name = name
        self.directory = directory
        self.lockFD = lockFD
    }

    static let files = ["pid", "config.json", "control.sock", "console.log", "console.log.1", "exit.json"]

    public var controlSocketPath: String { directory + "/control.sock" }
    public var consoleLogPath: String { directory + "/console.log" }

    public func writePID(_ pid: pid_t) throws(HostError) {
        try FileIO.writeFileAtomically(directory + "/pid", Array("\(pid)\n".utf8))
    }

    public func writeConfig(_ bytes: [UInt8]) throws(HostError) {
        try FileIO.writeFileAtomically(directory + "/config.json", bytes)
    }

    public func writeExitRecord(_ record: ExitRecord) throws(HostError) {
        // Not fsynced: the state directory is runtime state (tmpfs under /run), gone at reboot.
        try FileIO.writeFileAtomically(directory + "/exit.json", JSONText.encode(record.controlValue) + [0x0A])
    }

    /// Lets the lock go (the VM process is ending, or a parent hands it to its child).
    public func release() { close(lockFD) }

    /// Removes the directory of a VM that never ran (it failed before starting), then
    /// lets the lock go: nothing is left behind.
    public func discard() {
        Self.removeFiles(in: directory, lock: true)
        rmdir(directory)
        release()
    }

    /// Files with this prefix belong to a shared folder's virtiofsd (its socket and log).
    public static let shareFilePrefix = "virtiofsd-"

    /// The files svm puts in a VM directory, and nothing else: a stranger's file keeps
    /// the directory from going (rmdir fails) rather than being deleted.
    static func removeFiles(in directory: String, lock: Bool) {
        for file in files + (lock ? ["lock"] : []) { unlink(directory + "/" + file) }
        guard let d = opendir(directory) else { return }
        defer { closedir(d) }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name.hasPrefix(shareFilePrefix) { names.append(name) }
        }
        for name in names { unlink(directory + "/" + name) }
    }
}

/// How a VM ended, written by its process as its last act.
public struct ExitRecord: Codable, Equatable, Sendable {
    /// svm's exit status for the end (0 clean, 1 guest failure, 137 killed, ...).
    public var status: Int
    public var reason: String
    /// Unix time.
    public var endedAt: Double

    public init(status: Int, reason: String, endedAt: Double) {
        self.status = status
        self.reason = reason
        self.endedAt = endedAt
    }

    /// What exit.json holds; nil unless every field is there with its type.
    public init?(json: ControlValue) {
        guard let status = json["status"]?.int, let reason = json["reason"]?.string,
              let endedAt = json["endedAt"]?.double else { return nil }
        self.init(status: status, reason: reason, endedAt: endedAt)
    }

    /// The fields under their Codable names (what JSONDecoder reads back).
    public var controlValue: ControlValue {
        .object(["status": .int(status), "reason": .string(reason), "endedAt": .double(endedAt)])
    }
}

/// One VM directory as `svm ps` sees it.
public struct VMRecord: Sendable {
    public let name: String
    public let directory: String
    /// Its process holds the lock.
    public let live: Bool
    public let pid: Int32?
    /// Set once a VM ended normally; nil for a live VM and for a stale directory (a VM
    /// process that died without writing it: shown as `exited (unknown)`).
    public let exit: ExitRecord?
    public let config: [UInt8]?

    public var controlSocketPath: String { directory + "/control.sock" }
    public var consoleLogPath: String { directory + "/console.log" }
}
