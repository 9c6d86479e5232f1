import Glibc
import Host
import Sandbox

/// Copies a host directory tree into the initramfs (the guest init bind-mounts it where
/// the user asked). Regular files, directories and symlinks are copied (symlinks as
/// symlinks, never followed); anything else is skipped with a note. Everything belongs to
/// the program's uid/gid in the guest, so a writable volume is writable by the program;
/// permission bits are kept, except setuid/setgid.
struct VolumePacker {
    let uid: UInt32
    let gid: UInt32
    /// svm's own temporary directory (device, inode): a volume that contains it (say
    /// --volume /tmp:/data) must not copy the archive being written into itself.
    var excluded: (device: UInt64, inode: UInt64)?

    /// `hostRoot` must be a directory (symlinks to one are followed). Returns the paths
    /// copied (relative to `hostRoot`): after a read-write run, those the guest no longer
    /// has are deleted on the host, and only those.
    /// - Parameters:
    ///   - note: receives one line per skipped entry.
    ///   - interrupted: checked before each entry; a terminating signal's number stops the packing.
    func pack(hostRoot: String, at archiveRoot: String, into writer: inout CPIOWriter,
              note: (String) -> Void, interrupted: () -> Int32?) throws(RunError) -> Set<String> {
        var st = stat()
        guard stat(hostRoot, &st) == 0 else { throw RunError(hostRoot, .last("stat")) }
        var copied = Set<String>()
        try packDirectory(host: hostRoot, archive: archiveRoot, relative: "", mode: UInt32(st.st_mode), into: &writer,
                          copied: &copied, note: note, interrupted: interrupted)
        return copied
    }

    private func packDirectory(host: String, archive: String, relative: String, mode: UInt32,
                               into writer: inout CPIOWriter, copied: inout Set<String>,
                               note: (String) -> Void, interrupted: () -> Int32?) throws(RunError) {
        do { try writer.addDirectory(archive, mode: Self.permissions(mode), uid: uid, gid: gid) }
        catch { throw RunError("\(host): \(error)") }
        let listing: (names: [String], skipped: Int)
        do { listing = try TemporaryDirectory.listDirectory(host) } catch {
            throw RunError("\(host): cannot read the directory", error)
        }
        if listing.skipped > 0 {
            note("skipping \(listing.skipped) name(s) in \(host) that are not valid UTF-8")
        }
        for name in listing.names {
            if let signal = interrupted() { throw RunError.interrupted(signal: signal) }
            let hostPath = host + "/" + name
            let archivePath = archive + "/" + name
            let relativePath = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            guard lstat(hostPath, &st) == 0 else {
                if errno == ENOENT { continue }  // removed while we were copying
                throw RunError(hostPath, .last("lstat"))
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                if let x = excluded, UInt64(st.st_dev) == x.device, UInt64(st.st_ino) == x.inode { continue }
                copied.insert(relativePath)
                try packDirectory(host: hostPath, archive: archivePath, relative: relativePath, mode: UInt32(st.st_mode),
                                  into: &writer, copied: &copied, note: note, interrupted: interrupted)
            case S_IFREG:
                do {
                    try writer.addFile(archivePath, copyingFrom: hostPath, mode: Self.permissions(UInt32(st.st_mode)),
                                       uid: uid, gid: gid)
                } catch { throw RunError("\(error)") }
                copied.insert(relativePath)
            case S_IFLNK:
                guard let target = Self.readLink(hostPath) else {
                    throw RunError(hostPath, .last("readlink"))
                }
                do { try writer.addSymlink(archivePath, target: target, uid: uid, gid: gid) }
                catch { throw RunError("\(hostPath): \(error)") }
                copied.insert(relativePath)
            default:
                note("skipping \(hostPath): \(Self.kindName(st.st_mode)) (volumes hold files, directories and symlinks)")
            }
        }
    }

    static func permissions(_ mode: UInt32) -> UInt32 { mode & 0o1777 }

    static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        default: return "not a regular file"
        }
    }

    static func readLink(_ path: String) -> String? {
        var size = 256
        while size <= 1 << 16 {
            var buf = [UInt8](repeating: 0, count: size)
            let n = buf.withUnsafeMutableBufferPointer { p in
                p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { readlink(path, $0, p.count) }
            }
            guard n >= 0 else { return nil }
            if n < size { return String(decoding: buf[0..<n], as: UTF8.self) }
            size *= 2
        }
        return nil
    }
}
