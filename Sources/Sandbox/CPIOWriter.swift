import Glibc
import Host

/// Errors from building a cpio archive. Each names the archive or host path concerned.
public enum CPIOError: Error, Equatable, CustomStringConvertible {
    /// A system call on `path` failed (the HostError's operation is e.g. "open", "read",
    /// "write archive").
    case system(path: String, HostError)
    /// The archive path is empty, has a NUL byte, or a `..` component.
    case invalidPath(String)
    /// The path (or one of its parents) was already added as something else.
    case conflict(path: String, existing: String)
    /// newc stores sizes in 32 bits.
    case tooLarge(path: String, size: UInt64)
    /// `addFile(_:copyingFrom:)` was given something other than a regular file.
    case notRegularFile(path: String)
    /// The host file's size changed while it was being copied; the archive is unusable.
    case fileChanged(path: String)
    /// An entry was added after `finish()`.
    case alreadyFinished

    public var description: String {
        switch self {
        case let .system(path, error):
            return "\(path): \(error)"
        case let .invalidPath(path):
            return "\(path.debugDescription): invalid path for the initramfs"
        case let .conflict(path, existing):
            return "\(path): already in the initramfs as a \(existing)"
        case let .tooLarge(path, size):
            return "\(path): \(size) bytes is too large for a newc cpio entry (limit 4 GiB - 1)"
        case let .notRegularFile(path):
            return "\(path): not a regular file"
        case let .fileChanged(path):
            return "\(path): file changed size while being copied"
        case .alreadyFinished:
            return "cpio archive already finished"
        }
    }
}

/// Streams a `newc` ("070701") cpio archive, the format the Linux kernel unpacks as an
/// initramfs, to a file descriptor.
///
/// Archive paths are relative to the guest root: a leading "/" is dropped, "." and empty
/// components are removed, ".." is refused. Missing parent directories are added (mode
/// 0755, owner 0) before an entry, once each. Owners default to 0 and every entry gets the
/// same mtime, so the same inputs always give the same bytes. Inode numbers count up from 1.
///
/// Data is written through a 64 KiB buffer; files copied from the host are streamed in
/// chunks, never held whole in memory. The descriptor is not closed.
public struct CPIOWriter {
    /// What an archive path was added as; used to refuse conflicting entries.
    public enum Kind: String, Sendable {
        case directory, file, symlink, device
    }

    public static let magic = "070701"
    static let headerSize = 110
    static let bufferCapacity = 64 << 10

    public let fd: Int32
    public let mtime: UInt32
    /// Archive bytes produced so far (buffered or written).
    public private(set) var bytesWritten: UInt64 = 0
    private var kinds: [String: Kind] = [:]
    private var nextInode: UInt32 = 1
    private var buffer: [UInt8] = []
    private var finished = false

    public init(fd: Int32, mtime: UInt32 = 0) {
        self.fd = fd
        self.mtime = mtime
        buffer.reserveCapacity(Self.bufferCapacity)
    }

    /// What `path` was added as, if it was (explicitly or as a parent directory).
    public func kind(of path: String) -> Kind? {
        guard let name = try? Self.normalize(path) else { return nil }
        return kinds[name]
    }

    public mutating func addDirectory(_ path: String, mode: UInt32 = 0o755, uid: UInt32 = 0, gid: UInt32 = 0) throws {
        let name = try prepare(path, as: .directory)
        if kinds[name] == .directory { return }  // already there, e.g. as an implicit parent
        try emitEntry(name: name, kind: .directory, mode: UInt32(S_IFDIR) | (mode & 0o7777),
                      uid: uid, gid: gid, nlink: 2, size: 0)
    }

    /// The archive's root directory itself (entry "."): the kernel applies its mode and
    /// owner to the root of the initramfs, which is otherwise the tmpfs default, 1777 —
    /// writable by every user. Must come first.
    public mutating func setRootDirectory(mode: UInt32 = 0o755, uid: UInt32 = 0, gid: UInt32 = 0) throws {
        guard !finished else { throw CPIOError.alreadyFinished }
        guard bytesWritten == 0 else { throw CPIOError.conflict(path: ".", existing: "entry before the root directory") }
        let inode = nextInode
        nextInode &+= 1
        try header(name: ".", inode: inode, mode: UInt32(S_IFDIR) | (mode & 0o7777), uid: uid, gid: gid,
                   nlink: 2, mtime: mtime, size: 0, rdevMajor: 0, rdevMinor: 0)
    }

    public mutating func addFile(_ path: String, contents: [UInt8], mode: UInt32 = 0o644,
                                 uid: UInt32 = 0, gid: UInt32 = 0) throws {
        let name = try prepare(path, as: .file)
        guard contents.count <= Int(UInt32.max) else { throw CPIOError.tooLarge(path: path, size: UInt64(contents.count)) }
        try emitEntry(name: name, kind: .file, mode: UInt32(S_IFREG) | (mode & 0o7777),
                      uid: uid, gid: gid, nlink: 1, size: UInt32(contents.count))
        try contents.withUnsafeBytes { try emit($0, entry: name) }
        try pad(entry: name)
    }

    /// Copies a regular host file (symlinks followed) into the archive. `mode` nil keeps the
    /// host file's permission bits.
    public mutating func addFile(_ path: String, copyingFrom hostPath: String, mode: UInt32? = nil,
                                 uid: UInt32 = 0, gid: UInt32 = 0) throws {
        let name = try prepare(path, as: .file)
        let src = open(hostPath, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw CPIOError.system(path: hostPath, .last("open")) }
        defer { close(src) }
        var st = stat()
        guard fstat(src, &st) == 0 else { throw CPIOError.system(path: hostPath, .last("fstat")) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw CPIOError.notRegularFile(path: hostPath) }
        let size = UInt64(st.st_size)
        guard size <= UInt64(UInt32.max) else { throw CPIOError.tooLarge(path: hostPath, size: size) }
        let perm = mode ?? UInt32(st.st_mode)
        try emitEntry(name: name, kind: .file, mode: UInt32(S_IFREG) | (perm & 0o7777),
                      uid: uid, gid: gid, nlink: 1, size: UInt32(size))
        // Stream in chunks; the header already promised `size` bytes, so a file that grows
        // or shrinks meanwhile is an error rather than a silently corrupt archive.
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferCapacity, alignment: 16)
        defer { chunk.deallocate() }
        var remaining = size
        while remaining > 0 {
            let want = Int(min(remaining, UInt64(chunk.count)))
            let n: Int
            do { n = try FileIO.readFully(src, into: UnsafeMutableRawBufferPointer(rebasing: chunk[0..<want])) }
            catch { throw CPIOError.system(path: hostPath, error) }
            if n < want { throw CPIOError.fileChanged(path: hostPath) }
            try emit(UnsafeRawBufferPointer(rebasing: chunk[0..<n]), entry: name)
            remaining -= UInt64(n)
        }
        if (try? FileIO.readFully(src, count: 1))?.isEmpty == false { throw CPIOError.fileChanged(path: hostPath) }
        try pad(entry: name)
    }

    /// A symbolic link; `target` is stored as given (relative or absolute).
    public mutating func addSymlink(_ path: String, target: String, uid: UInt32 = 0, gid: UInt32 = 0) throws {
        let name = try prepare(path, as: .symlink)
        let bytes = Array(target.utf8)
        guard !bytes.isEmpty, !bytes.contains(0) else { throw CPIOError.invalidPath(target) }
        try emitEntry(name: name, kind: .symlink, mode: UInt32(S_IFLNK) | 0o777,
                      uid: uid, gid: gid, nlink: 1, size: UInt32(bytes.count))
        try bytes.withUnsafeBytes { try emit($0, entry: name) }
        try pad(entry: name)
    }

    /// A character device node, e.g. `dev/console` (5, 1) so the kernel can open the
    /// console for init before devtmpfs is mounted.
    public mutating func addCharDevice(_ path: String, major: UInt32, minor: UInt32, mode: UInt32 = 0o600,
                                       uid: UInt32 = 0, gid: UInt32 = 0) throws {
        let name = try prepare(path, as: .device)
        try emitEntry(name: name, kind: .device, mode: UInt32(S_IFCHR) | (mode & 0o7777),
                      uid: uid, gid: gid, nlink: 1, size: 0, rdevMajor: major, rdevMinor: minor)
    }

    /// Writes the "TRAILER!!!" entry and flushes. Nothing can be added afterwards.
    public mutating func finish() throws {
        guard !finished else { throw CPIOError.alreadyFinished }
        try header(name: "TRAILER!!!", inode: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0,
                   size: 0, rdevMajor: 0, rdevMinor: 0)
        try flush(entry: "TRAILER!!!")
        finished = true
    }

    // MARK: - Paths

    /// The archive name for a path: relative, no "." or empty components; ".." refused.
    static func normalize(_ path: String) throws -> String {
        guard !path.utf8.contains(0) else { throw CPIOError.invalidPath(path) }
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
            guard part != ".." else { throw CPIOError.invalidPath(path) }
            parts.append(part)
        }
        guard !parts.isEmpty else { throw CPIOError.invalidPath(path) }
        return parts.joined(separator: "/")
    }

    /// Normalizes `path`, checks it against what is already there and adds missing parents.
    private mutating func prepare(_ path: String, as kind: Kind) throws -> String {
        guard !finished else { throw CPIOError.alreadyFinished }
        let name = try Self.normalize(path)
        if let existing = kinds[name], !(existing == .directory && kind == .directory) {
            throw CPIOError.conflict(path: path, existing: existing.rawValue)
        }
        var parent = ""
        for part in name.split(separator: "/").dropLast() {
            parent = parent.isEmpty ? String(part) : parent + "/" + part
            switch kinds[parent] {
            case .directory?: continue
            case let other?: throw CPIOError.conflict(path: parent, existing: other.rawValue)
            case nil:
                try emitEntry(name: parent, kind: .directory, mode: UInt32(S_IFDIR) | 0o755,
                              uid: 0, gid: 0, nlink: 2, size: 0)
            }
        }
        return name
    }

    // MARK: - Encoding

    private mutating func emitEntry(name: String, kind: Kind, mode: UInt32, uid: UInt32, gid: UInt32,
                                    nlink: UInt32, size: UInt32, rdevMajor: UInt32 = 0, rdevMinor: UInt32 = 0) throws {
        let inode = nextInode
        nextInode &+= 1
        kinds[name] = kind
        try header(name: name, inode: inode, mode: mode, uid: uid, gid: gid, nlink: nlink, mtime: mtime,
                   size: size, rdevMajor: rdevMajor, rdevMinor: rdevMinor)
    }

    /// 110-byte ASCII header, the NUL-terminated name, then zeros up to a 4-byte boundary.
    private mutating func header(name: String, inode: UInt32, mode: UInt32, uid: UInt32, gid: UInt32,
                                 nlink: UInt32, mtime: UInt32, size: UInt32, rdevMajor: UInt32, rdevMinor: UInt32) throws {
        var h: [UInt8] = Array(Self.magic.utf8)
        h.reserveCapacity(Self.headerSize + name.utf8.count + 4)
        let nameBytes = Array(name.utf8)
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
        for field in [inode, mode, uid, gid, nlink, mtime, size, 0, 0, rdevMajor, rdevMinor,
                      UInt32(nameBytes.count + 1), 0] {
            Self.appendHex8(field, to: &h)
        }
        h += nameBytes
        h.append(0)
        try h.withUnsafeBytes { try emit($0, entry: name) }
        try pad(entry: name)
    }

    static func appendHex8(_ value: UInt32, to out: inout [UInt8]) {
        let digits: [UInt8] = Array("0123456789ABCDEF".utf8)
        for shift in stride(from: 28, through: 0, by: -4) {
            out.append(digits[Int((value >> UInt32(shift)) & 0xF)])
        }
    }

    /// Zeros up to the next 4-byte boundary of the archive. Entries start aligned, so the
    /// archive offset decides the padding of both the header+name and the data.
    private mutating func pad(entry: String) throws {
        let n = Int((4 - bytesWritten % 4) % 4)
        if n > 0 {
            let zeros: [UInt8] = [0, 0, 0]
            try zeros.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<n]), entry: entry) }
        }
    }

    private mutating func emit(_ bytes: UnsafeRawBufferPointer, entry: String) throws {
        if buffer.count + bytes.count > Self.bufferCapacity { try flush(entry: entry) }
        if bytes.count >= Self.bufferCapacity {
            try Self.writeAll(fd, bytes, entry: entry)
        } else {
            buffer.append(contentsOf: bytes)
        }
        bytesWritten += UInt64(bytes.count)
    }

    private mutating func flush(entry: String) throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try Self.writeAll(fd, $0, entry: entry) }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Waits for room on a non-blocking descriptor rather than fail.
    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, entry: String) throws {
        do { try FileIO.write(fd, bytes, what: "write archive") } catch { throw CPIOError.system(path: entry, error) }
    }
}
