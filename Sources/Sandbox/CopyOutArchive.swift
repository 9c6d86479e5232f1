import Glibc
import Host

/// One entry of the archive the guest init sends back for read-write volumes (the
/// "Copy-out" section of firmware/init/PROTOCOL.md), after `CopyOutArchive` checked it.
public struct CopyOutEntry: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case directory
        /// The data is `size` bytes at `offset` in the archive file.
        case file(offset: UInt64, size: UInt64)
        /// A regular file the guest did not touch (same inode at the same path, ctime from
        /// before the program ran): sent without data, the host keeps its copy.
        case unchangedFile
        case symlink(target: String)
    }

    /// Index of the volume in the job (a read-write one).
    public var volume: Int
    /// Below the volume root; never empty, no "", ".", ".." or "/" in a component.
    public var components: [String]
    public var kind: Kind
    /// Permission bits and the sticky bit only: never setuid or setgid.
    public var permissions: UInt32

    public var path: String { components.joined(separator: "/") }
}

/// Why a copy-out archive was refused as a whole. Anything here means the guest did not
/// send what svm-init sends, or the host could not read what it stored (`hostError`), so
/// nothing of it is applied.
public struct CopyOutArchiveError: Error, Equatable, CustomStringConvertible {
    public let description: String
    /// The failed host call, when the host and not the guest is to blame.
    public let hostError: HostError?

    init(_ description: String) {
        self.description = description
        hostError = nil
    }

    init(_ context: String, _ error: HostError) {
        description = "\(context): \(error)"
        hostError = error
    }
}

/// Reads a copy-out archive (newc cpio, entries named "N/PATH" for volume N) from a file
/// the host filled with what the guest sent. The guest is hostile: every field is checked
/// against the bytes really present and against fixed limits before it is used, and any
/// violation refuses the whole archive. Names that are not UTF-8 are the one thing merely
/// skipped (a program may well create them; `skipped` says how many).
public struct CopyOutArchive {
    public static let maxNameBytes = 4096
    public static let maxComponentBytes = 255
    public static let maxSymlinkTarget = 4095
    public static let maxEntries = 1 << 20
    static let headerSize = 110
    static let trailer = "TRAILER!!!"

    public private(set) var entries: [CopyOutEntry] = []
    public private(set) var skipped = 0

    /// - Parameters:
    ///   - fd: the archive file (read with pread; the offset is not used).
    ///   - volumes: the indices the guest may name (the read-write volumes).
    public init(fd: Int32, volumes: Set<Int>) throws(CopyOutArchiveError) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CopyOutArchiveError("copy-out archive", .last("fstat")) }
        let end = UInt64(st.st_size)
        var offset: UInt64 = 0
        while true {
            guard end - offset >= UInt64(Self.headerSize) else {
                throw CopyOutArchiveError("truncated at byte \(offset): no trailer (the guest did not finish sending)")
            }
            let header = try Self.read(fd, at: offset, count: Self.headerSize)
            let fields = try Self.parseHeader(header, at: offset)
            let nameSize = UInt64(fields.nameSize)
            guard nameSize >= 2, nameSize <= UInt64(Self.maxNameBytes) + 1 else {
                throw CopyOutArchiveError("entry at byte \(offset): name size \(nameSize) out of range")
            }
            let nameStart = offset + UInt64(Self.headerSize)
            let dataStart = Self.align4(nameStart + nameSize)
            guard dataStart <= end else { throw CopyOutArchiveError("entry at byte \(offset): truncated name") }
            let nameBytes = try Self.read(fd, at: nameStart, count: Int(nameSize))
            guard nameBytes.last == 0, !nameBytes.dropLast().contains(0) else {
                throw CopyOutArchiveError("entry at byte \(offset): name not NUL-terminated or with an embedded NUL")
            }
            let size = UInt64(fields.fileSize)
            guard size <= end - dataStart else {
                throw CopyOutArchiveError("entry at byte \(offset): \(size) bytes of data, but the archive ends first")
            }
            let next = Self.align4(dataStart + size)
            guard next <= end else { throw CopyOutArchiveError("entry at byte \(offset): truncated padding") }

            let raw = Array(nameBytes.dropLast())
            if raw == Array(Self.trailer.utf8) {
                guard next == end else { throw CopyOutArchiveError("\(end - next) bytes after the trailer") }
                return
            }
            guard entries.count < Self.maxEntries else {
                throw CopyOutArchiveError("more than \(Self.maxEntries) entries")
            }
            if let entry = try Self.entry(name: raw, mode: fields.mode, check: fields.check, dataStart: dataStart,
                                          size: size, fd: fd, volumes: volumes, at: offset) {
                entries.append(entry)
            } else {
                skipped += 1
            }
            offset = next
        }
    }

    /// The entry, or nil when a name is not UTF-8 (skipped, not refused).
    private static func entry(name raw: [UInt8], mode: UInt32, check: UInt32, dataStart: UInt64, size: UInt64, fd: Int32,
                              volumes: Set<Int>, at offset: UInt64) throws(CopyOutArchiveError) -> CopyOutEntry? {
        let parts = raw.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard parts.count >= 2 else {
            throw CopyOutArchiveError("entry at byte \(offset): name has no volume prefix")
        }
        guard let volume = decimal(parts[0]), volumes.contains(volume) else {
            throw CopyOutArchiveError("entry at byte \(offset): not a read-write volume: \(String(decoding: parts[0], as: UTF8.self).debugDescription)")
        }
        var components: [String] = []
        var utf8 = true
        for part in parts.dropFirst() {
            guard !part.isEmpty, part.count <= maxComponentBytes,
                  !part.elementsEqual(".".utf8), !part.elementsEqual("..".utf8) else {
                throw CopyOutArchiveError("entry at byte \(offset): refused name \(String(decoding: raw, as: UTF8.self).debugDescription) (empty, \".\" or \"..\" component, or absolute)")
            }
            if let s = String(validating: part, as: UTF8.self) { components.append(s) } else { utf8 = false }
        }
        let permissions = mode & 0o1777
        // check 1 marks an unchanged regular file (svm-init's only use of the field).
        guard check == 0 || (check == 1 && mode & UInt32(S_IFMT) == UInt32(S_IFREG) && size == 0) else {
            throw CopyOutArchiveError("entry at byte \(offset): check field \(check) (only 1, on a regular file without data)")
        }
        let kind: CopyOutEntry.Kind
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFDIR):
            guard size == 0 else { throw CopyOutArchiveError("entry at byte \(offset): a directory with data") }
            kind = .directory
        case UInt32(S_IFREG):
            kind = check == 1 ? .unchangedFile : .file(offset: dataStart, size: size)
        case UInt32(S_IFLNK):
            guard size >= 1, size <= UInt64(maxSymlinkTarget) else {
                throw CopyOutArchiveError("entry at byte \(offset): symlink target of \(size) bytes")
            }
            let target = try read(fd, at: dataStart, count: Int(size))
            guard !target.contains(0) else { throw CopyOutArchiveError("entry at byte \(offset): NUL in a symlink target") }
            guard let s = String(validating: target, as: UTF8.self) else { return nil }
            kind = .symlink(target: s)
        default:
            throw CopyOutArchiveError("entry at byte \(offset): mode \(String(mode, radix: 8)) is not a directory, file or symlink")
        }
        guard utf8 else { return nil }
        return CopyOutEntry(volume: volume, components: components, kind: kind, permissions: permissions)
    }

    struct Header {
        var mode: UInt32
        var fileSize: UInt32
        var nameSize: UInt32
        var check: UInt32
    }

    /// "070701" and thirteen 8-digit hex fields; only mode, filesize, namesize and check matter.
    static func parseHeader(_ h: [UInt8], at offset: UInt64) throws(CopyOutArchiveError) -> Header {
        guard h.count == headerSize, h[0..<6].elementsEqual("070701".utf8) else {
            throw CopyOutArchiveError("entry at byte \(offset): bad cpio magic (newc 070701 expected)")
        }
        var values: [UInt32] = []
        for i in 0..<13 {
            var v: UInt32 = 0
            for byte in h[(6 + 8 * i)..<(14 + 8 * i)] {
                guard let d = hexDigit(byte) else {
                    throw CopyOutArchiveError("entry at byte \(offset): header field \(i) is not hexadecimal")
                }
                v = v << 4 | d
            }
            values.append(v)
        }
        return Header(mode: values[1], fileSize: values[6], nameSize: values[11], check: values[12])
    }

    static func hexDigit(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    /// A volume index as svm-init writes it: decimal, no sign, no leading zero.
    static func decimal(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 6, bytes.count == 1 || bytes.first != UInt8(ascii: "0") else { return nil }
        var v = 0
        for b in bytes {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            v = v * 10 + Int(b - UInt8(ascii: "0"))
        }
        return v
    }

    static func align4(_ n: UInt64) -> UInt64 { (n + 3) & ~3 }

    /// Exactly `count` bytes at `offset` (the caller checked they are within the file).
    static func read(_ fd: Int32, at offset: UInt64, count: Int) throws(CopyOutArchiveError) -> [UInt8] {
        let bytes: [UInt8]
        do { bytes = try FileIO.pread(fd, count: count, at: offset, what: "read") } catch {
            throw CopyOutArchiveError("copy-out archive at byte \(offset)", error)
        }
        guard bytes.count == count else { throw CopyOutArchiveError("read at byte \(offset): unexpected end of file") }
        return bytes
    }
}
