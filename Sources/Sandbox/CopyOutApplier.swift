import Glibc
import Host

/// A host failure while applying a copy-out (disk full, root directory gone): the host
/// path and the failed call with its errno. Applying stops there.
public struct CopyOutApplyError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let error: HostError

    init(_ path: String, _ error: HostError) {
        self.path = path
        self.error = error
    }

    public var description: String { "\(path): \(error)" }
}

/// Makes a host directory look like the guest's copy of a read-write volume, given the
/// checked entries of a `CopyOutArchive`:
/// 1. what was copied in (`copiedIn`) and is no longer in the guest is deleted, deepest first
///    (a file the guest reports unchanged is still there, so it stays);
/// 2. directories are created, regular files written (to a temporary name, then renamed over
///    the old one), symlinks recreated as symlinks, in archive order;
/// 3. directory permissions are set last, so a read-only directory can still be filled.
///
/// The archive comes from a hostile guest, so every path is resolved one component at a
/// time with openat(O_NOFOLLOW | O_DIRECTORY) from the volume root: a symlink (guest-made or
/// not) in the middle of a path is never followed, and a final name is only ever replaced
/// by rename/unlink, never opened for writing, so nothing is written through a symlink.
/// Entries that would need that are skipped with a note. No setuid/setgid bits, no device
/// nodes, no ownership changes: new files belong to whoever runs svm.
public struct CopyOutApplier {
    public let archiveFD: Int32
    /// One line per entry that was skipped, and why.
    public private(set) var notes: [String] = []
    private var counter = 0

    public init(archiveFD: Int32) {
        self.archiveFD = archiveFD
    }

    public mutating func apply(_ entries: [CopyOutEntry], copiedIn: Set<String>,
                               hostRoot: String) throws(CopyOutApplyError) {
        let root = open(hostRoot, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw CopyOutApplyError(hostRoot, .last("open")) }
        defer { close(root) }

        let present = Set(entries.map(\.path))
        let gone = copiedIn.subtracting(present).map { $0.split(separator: "/").map(String.init) }
        for components in gone.sorted(by: { $0.count > $1.count }) {
            try delete(components, root: root, hostRoot: hostRoot)
        }
        var directories: [CopyOutEntry] = []
        for entry in entries {
            switch entry.kind {
            case .directory:
                try makeDirectory(entry, root: root, hostRoot: hostRoot)
                directories.append(entry)
            case let .file(offset, size):
                try writeFile(entry, offset: offset, size: size, root: root, hostRoot: hostRoot)
            case .unchangedFile:
                break  // the host's copy stays; being listed keeps it from deletion
            case let .symlink(target):
                try makeSymlink(entry, target: target, root: root, hostRoot: hostRoot)
            }
        }
        for entry in directories.reversed() {
            guard let dir = openPath(entry.components, root: root, create: false) else { continue }
            fchmod(dir, mode_t(entry.permissions))
            close(dir)
        }
    }

    // MARK: - Entries

    private mutating func delete(_ components: [String], root: Int32, hostRoot: String) throws(CopyOutApplyError) {
        let path = components.joined(separator: "/")
        guard let parent = openPath(components.dropLast(), root: root, create: false) else { return }
        defer { close(parent) }
        var st = stat()
        guard fstatat(parent, components.last!, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return }
        let isDirectory = (st.st_mode & S_IFMT) == S_IFDIR
        if unlinkat(parent, components.last!, isDirectory ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT {
            notes.append("\(hostRoot)/\(path): not deleted: \(HostError.last(isDirectory ? "rmdir" : "unlink"))")
        }
    }

    private mutating func makeDirectory(_ entry: CopyOutEntry, root: Int32, hostRoot: String) throws(CopyOutApplyError) {
        guard let parent = parentDirectory(entry, root: root, hostRoot: hostRoot) else { return }
        defer { close(parent) }
        let name = entry.components.last!
        var st = stat()
        if fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { return }
            guard unlinkat(parent, name, 0) == 0 else {
                throw CopyOutApplyError("\(hostRoot)/\(entry.path)", .last("unlink"))
            }
        }
        // Owner-writable until the end, when the guest's permissions are set.
        guard mkdirat(parent, name, 0o700) == 0 else {
            throw CopyOutApplyError("\(hostRoot)/\(entry.path)", .last("mkdir"))
        }
    }

    private mutating func writeFile(_ entry: CopyOutEntry, offset: UInt64, size: UInt64, root: Int32,
                                    hostRoot: String) throws(CopyOutApplyError) {
        guard let parent = parentDirectory(entry, root: root, hostRoot: hostRoot) else { return }
        defer { close(parent) }
        if try keepIfSame(entry, offset: offset, size: size, in: parent, hostRoot: hostRoot) { return }
        let temporary = temporaryName()
        let fd = openat(parent, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CopyOutApplyError("\(hostRoot)/\(entry.path)", .last("create")) }
        do throws(CopyOutApplyError) {
            defer { close(fd) }
            try copyData(offset: offset, size: size, to: fd, path: "\(hostRoot)/\(entry.path)")
            guard fchmod(fd, mode_t(entry.permissions)) == 0 else {
                throw CopyOutApplyError("\(hostRoot)/\(entry.path)", .last("chmod"))
            }
        } catch {
            unlinkat(parent, temporary, 0)
            throw error
        }
        try replace(entry, with: temporary, in: parent, hostRoot: hostRoot)
    }

    /// The whole volume comes back, changed or not: a host file with the same bytes is
    /// left in place (its mtime too, which build tools care about), only its permissions
    /// set. Not when it has other links: its mode is not the guest's to change then.
    private func keepIfSame(_ entry: CopyOutEntry, offset: UInt64, size: UInt64, in parent: Int32,
                            hostRoot: String) throws(CopyOutApplyError) -> Bool {
        let fd = openat(parent, entry.components.last!, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_nlink == 1,
              UInt64(st.st_size) == size else { return false }
        var done: UInt64 = 0
        while done < size {
            let want = Int(min(UInt64(Self.chunkSize), size - done))
            guard let theirs = try? FileIO.pread(archiveFD, count: want, at: offset + done),
                  let ours = try? FileIO.pread(fd, count: want, at: done),
                  theirs.count == want, theirs == ours else { return false }
            done += UInt64(want)
        }
        if UInt32(st.st_mode) & 0o7777 != entry.permissions && fchmod(fd, mode_t(entry.permissions)) != 0 {
            throw CopyOutApplyError("\(hostRoot)/\(entry.path)", .last("chmod"))
        }
        return true
    }

    private mutating func makeSymlink(_ entry: CopyOutEntry, target: String, root: Int32,
                                      hostRoot: String) throws(CopyOutApplyError) {
        guard let parent = parentDirectory(entry, root: root, hostRoot: hostRoot) else { return }
        defer { close(parent) }
        let temporary = temporaryName()
        guard symlinkat(target, parent, temporary) == 0 else {
            throw CopyOutApplyError("\(hostRoot)/\(entry.path)", .last("symlink"))
        }
        try replace(entry, with: temporary, in: parent, hostRoot: hostRoot)
    }

    /// Renames `temporary` over the entry's name; rename replaces a symlink or file there
    /// without following it. An (empty) directory in the way is removed first.
    private mutating func replace(_ entry: CopyOutEntry, with temporary: String, in parent: Int32,
                                  hostRoot: String) throws(CopyOutApplyError) {
        let name = entry.components.last!
        var st = stat()
        if fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFDIR,
           unlinkat(parent, name, AT_REMOVEDIR) != 0 {
            notes.append("\(hostRoot)/\(entry.path): not replaced: a directory there could not be removed: \(HostError.last("rmdir"))")
            unlinkat(parent, temporary, 0)
            return
        }
        guard renameat(parent, temporary, parent, name) == 0 else {
            let e = HostError.last("rename")
            unlinkat(parent, temporary, 0)
            throw CopyOutApplyError("\(hostRoot)/\(entry.path)", e)
        }
    }

    // MARK: - Paths

    /// The entry's parent directory, created as needed; nil (with a note) when a component
    /// is not a directory, e.g. a symlink the guest planted there.
    private mutating func parentDirectory(_ entry: CopyOutEntry, root: Int32, hostRoot: String) -> Int32? {
        if let fd = openPath(entry.components.dropLast(), root: root, create: true) { return fd }
        notes.append("\(hostRoot)/\(entry.path): skipped: a directory on its path is a symlink or not a directory (symlinks are never followed)")
        return nil
    }

    /// Opens the directory `components` below `root` one component at a time, never
    /// following a symlink; with `create`, missing directories are made (mode 0755).
    private func openPath<C: Collection>(_ components: C, root: Int32, create: Bool) -> Int32? where C.Element == String {
        var current = dup(root)
        guard current >= 0 else { return nil }
        for name in components {
            var next = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT && create && mkdirat(current, name, 0o755) == 0 {
                next = openat(current, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            close(current)
            guard next >= 0 else { return nil }
            current = next
        }
        return current
    }

    private mutating func temporaryName() -> String {
        counter += 1
        return ".svm-copy-out.\(getpid()).\(counter)"
    }

    static let chunkSize = 64 << 10

    private func copyData(offset: UInt64, size: UInt64, to fd: Int32, path: String) throws(CopyOutApplyError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var done: UInt64 = 0
        while done < size {
            let want = Int(min(UInt64(buffer.count), size - done))
            let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want])
            do throws(HostError) {
                let n = try FileIO.pread(archiveFD, into: piece, at: offset + done, what: "read the copy-out archive")
                // The archive was checked to hold every byte: short means it changed.
                guard n == want else { throw HostError("read the copy-out archive", errno: EIO) }
                try FileIO.write(fd, UnsafeRawBufferPointer(piece), what: "write")
            } catch {
                throw CopyOutApplyError(path, error)
            }
            done += UInt64(want)
        }
    }
}
