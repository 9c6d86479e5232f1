import Glibc
import Host

/// Why a program cannot be packed into the sandbox. Descriptions are one line naming the file.
public enum ELFError: Error, Equatable, CustomStringConvertible {
    case notFound(String)
    case notRegularFile(String)
    case notELF(String)
    /// ELF, but 32-bit or big-endian.
    case wrongClass(String, detail: String)
    /// ELF64 for another architecture (`e_machine`).
    case wrongMachine(String, machine: UInt16)
    /// Headers that point outside the file or make no sense.
    case corrupt(String, reason: String)
    /// A DT_NEEDED library (or the PT_INTERP loader) found nowhere the loader would look.
    case libraryNotFound(library: String, neededBy: String)
    /// A library candidate that ld.so would stop at (not ELF at all, unlike a wrong class).
    case invalidLibrary(String, reason: String)
    /// A host call on the file failed.
    case io(String, HostError)
    case symlinkLoop(String)

    static let hint = "(svm run needs a Linux x86-64 program)"

    public var description: String {
        switch self {
        case let .notFound(path):
            return "\(path): not found"
        case let .notRegularFile(path):
            return "\(path): not a regular file"
        case let .notELF(path):
            return "\(path): not an ELF executable \(Self.hint)"
        case let .wrongClass(path, detail):
            return "\(path): \(detail) ELF, not x86-64 \(Self.hint)"
        case let .wrongMachine(path, machine):
            return "\(path): ELF for machine \(machine) (\(Self.machineName(machine))), not x86-64 \(Self.hint)"
        case let .corrupt(path, reason):
            return "\(path): corrupt ELF file: \(reason)"
        case let .libraryNotFound(library, neededBy):
            return "\(library) needed by \(neededBy): not found"
        case let .invalidLibrary(path, reason):
            return "\(path): invalid shared library: \(reason)"
        case let .io(path, error):
            return "\(path): \(error)"
        case let .symlinkLoop(path):
            return "\(path): too many levels of symbolic links"
        }
    }

    static func machineName(_ m: UInt16) -> String {
        switch m {
        case 3: return "i386"
        case 40: return "ARM"
        case 183: return "AArch64"
        case 243: return "RISC-V"
        case 20: return "PowerPC"
        case 21: return "PowerPC64"
        case 22: return "S/390"
        default: return "unknown"
        }
    }
}

/// A host path to copy into the guest at the same path.
public enum HostEntry: Hashable, Sendable, CustomStringConvertible {
    /// A regular file.
    case file(String)
    /// A symbolic link and its target exactly as stored (relative or absolute).
    case symlink(String, target: String)

    public var path: String {
        switch self {
        case let .file(p): return p
        case let .symlink(p, _): return p
        }
    }

    public var description: String {
        switch self {
        case let .file(p): return p
        case let .symlink(p, t): return "\(p) -> \(t)"
        }
    }
}

/// Everything from the host that a program needs to start in the guest.
public struct ProgramDependencies: Sendable, Equatable {
    /// The absolute path to run in the guest: the program's directory with symlinks resolved,
    /// and its own name as it was given (so argv[0] keeps a symlink's name, e.g. python3).
    public var program: String
    /// PT_INTERP as written in the program (e.g. /lib64/ld-linux-x86-64.so.2); nil if static.
    public var interpreter: String?
    /// Each DT_NEEDED name (of the program and, recursively, of its libraries) and the path
    /// it was found at, as the loader would open it (not symlink-resolved).
    public var libraries: [String: String]
    /// Every symlink met while resolving those paths (including a symlinked parent such as
    /// /lib -> usr/lib) and every regular file they lead to, sorted by path. Parents of every
    /// entry are real directories on the host, so creating the parents as directories, each
    /// symlink as a symlink and each file as a copy reproduces every path in the guest.
    public var entries: [HostEntry]
    /// Directories where libraries were found that the guest's loader does not search by
    /// itself (it has no /etc/ld.so.cache): put them on LD_LIBRARY_PATH in the guest.
    public var guestLibraryPath: [String]

    public var isStatic: Bool { interpreter == nil }
    /// All host paths of `entries`.
    public var paths: [String] { entries.map(\.path) }
}

/// Finds a bare program name on a PATH like execvp(3): each entry in order (empty = "."),
/// the first regular file that is executable. Names containing "/" are returned as given.
public func resolveProgram(_ name: String, path: String) -> String? {
    guard !name.isEmpty else { return nil }
    if name.contains("/") { return name }
    for dir in path.split(separator: ":", omittingEmptySubsequences: false) {
        let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + name
        var st = stat()
        if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
            return candidate
        }
    }
    return nil
}

/// Resolves a program's shared-library closure the way glibc's ld.so would on a Debian
/// x86-64 host, without running anything (no ldd: the program is untrusted).
///
/// Search order for a DT_NEEDED name without "/": DT_RPATH of the requesting object and of
/// each object that loaded it up to the executable (only when the requesting object has no
/// DT_RUNPATH); then its DT_RUNPATH; then the ld.so.conf directories and the default
/// directories (skipped for DF_1_NODEFLIB). LD_LIBRARY_PATH is ignored on purpose. $ORIGIN and
/// ${ORIGIN} are expanded; path entries with other $ tokens are skipped. Candidates that are not
/// ELF64 x86-64 (32-bit, another machine) are skipped and the search goes on, as ld.so does;
/// a candidate that is not ELF at all or is corrupt stops ld.so, and is an error here too. glibc-hwcaps
/// subdirectories are not used: the plain directory always works, and the guest's CPU may
/// lack the features a hwcaps variant was built for.
public enum ELFDependencies {
    /// Searched after the ld.so.conf directories, in this order.
    public static let defaultDirectories = [
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
    ]
    /// What Debian's ld.so searches with no cache ("system search path" in `ld.so --help`).
    public static let loaderSystemDirectories = [
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib",
    ]

    /// The directories of /etc/ld.so.conf (with its include directives) followed by
    /// `defaultDirectories`, without duplicates.
    public static func hostSearchDirectories(config: String = "/etc/ld.so.conf") -> [String] {
        var dirs: [String] = []
        LDConfig.read(config, depth: 0, into: &dirs)
        for d in defaultDirectories where !dirs.contains(d) { dirs.append(d) }
        return dirs
    }

    /// - Parameters:
    ///   - program: a path to the program (relative paths are taken from the current directory).
    ///   - searchDirectories: replaces `hostSearchDirectories()` (for tests).
    public static func resolve(program: String, searchDirectories: [String]? = nil) throws -> ProgramDependencies {
        var r = Resolver(searchDirectories: searchDirectories ?? hostSearchDirectories())
        return try r.run(program)
    }
}

// MARK: - ELF parsing

/// What svm needs from one ELF64 x86-64 file; every offset is checked against the file size.
struct ELFInfo {
    var interpreter: String?
    var needed: [String] = []
    var rpath: String?
    var runpath: String?
    var soname: String?
    var noDefaultLib = false

    static let ptLoad: UInt32 = 1, ptDynamic: UInt32 = 2, ptInterp: UInt32 = 3
    static let dtNull: Int64 = 0, dtNeeded: Int64 = 1, dtStrtab: Int64 = 5, dtStrsz: Int64 = 10
    static let dtSoname: Int64 = 14, dtRpath: Int64 = 15, dtRunpath: Int64 = 29, dtFlags1: Int64 = 0x6fff_fffb
    static let df1NoDefLib: UInt64 = 0x800
    static let maxTable = 64 << 20

    /// Reads the headers of `path`. Throws notELF / wrongClass / wrongMachine for files that
    /// are not for this machine (a library search skips those) and corrupt for the rest.
    static func read(_ path: String) throws -> ELFInfo {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = HostError.last("open")
            throw e.errno == ENOENT || e.errno == ENOTDIR ? ELFError.notFound(path) : ELFError.io(path, e)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ELFError.io(path, .last("fstat")) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ELFError.notRegularFile(path) }
        let file = FileReader(fd: fd, size: UInt64(st.st_size), path: path)
        return try parse(file)
    }

    static func parse(_ f: FileReader) throws -> ELFInfo {
        let path = f.path
        guard f.size >= 4 else { throw ELFError.notELF(path) }
        let magic = try f.bytes(at: 0, count: 4, what: "ELF magic")
        guard magic == [0x7f, 0x45, 0x4c, 0x46] else { throw ELFError.notELF(path) }
        guard f.size >= 64 else { throw ELFError.corrupt(path, reason: "truncated ELF header (\(f.size) bytes)") }
        let eh = try f.bytes(at: 0, count: 64, what: "ELF header")
        switch eh[4] {
        case 2: break
        case 1: throw ELFError.wrongClass(path, detail: "32-bit")
        default: throw ELFError.corrupt(path, reason: "invalid ELF class \(eh[4])")
        }
        switch eh[5] {
        case 1: break
        case 2: throw ELFError.wrongClass(path, detail: "big-endian")
        default: throw ELFError.corrupt(path, reason: "invalid ELF data encoding \(eh[5])")
        }
        let machine = le16(eh, 18)
        guard machine == 62 else { throw ELFError.wrongMachine(path, machine: machine) }
        let type = le16(eh, 16)
        guard type == 2 || type == 3 else {
            throw ELFError.corrupt(path, reason: "ELF type \(type) is not an executable or shared object")
        }
        let phoff = le64(eh, 32)
        let phentsize = UInt64(le16(eh, 54))
        let phnum = UInt64(le16(eh, 56))
        guard phnum != 0xffff else { throw ELFError.corrupt(path, reason: "extended program header count is not supported") }
        guard phnum == 0 || phentsize >= 56 else {
            throw ELFError.corrupt(path, reason: "program header entry size \(phentsize) is too small")
        }
        let phdrs = try f.bytes(at: phoff, count: phnum * phentsize, what: "program headers")
        // Section headers are not needed, but when present they sit at the end of the file:
        // checking them catches a truncated file that the loader would map and crash on.
        let shoff = le64(eh, 40), shentsize = UInt64(le16(eh, 58)), shnum = UInt64(le16(eh, 60))
        if shoff != 0 {
            let (end, overflow) = shoff.addingReportingOverflow(shentsize * shnum)
            guard !overflow, end <= f.size else {
                throw ELFError.corrupt(path, reason: "section headers extend past the end of the file (truncated?)")
            }
        }

        var info = ELFInfo()
        var loads: [(vaddr: UInt64, offset: UInt64, filesz: UInt64)] = []
        var dynamic: (offset: UInt64, size: UInt64)?
        for i in 0..<Int(phnum) {
            let b = i * Int(phentsize)
            let ptype = le32(phdrs, b)
            let offset = le64(phdrs, b + 8), vaddr = le64(phdrs, b + 16), filesz = le64(phdrs, b + 32)
            switch ptype {
            case ptLoad:
                let (end, overflow) = offset.addingReportingOverflow(filesz)
                guard !overflow, end <= f.size else {
                    throw ELFError.corrupt(path, reason: "PT_LOAD segment at offset \(offset) extends past the end of the file (truncated?)")
                }
                loads.append((vaddr, offset, filesz))
            case ptDynamic:
                guard dynamic == nil else { throw ELFError.corrupt(path, reason: "more than one PT_DYNAMIC") }
                dynamic = (offset, filesz)
            case ptInterp:
                guard info.interpreter == nil else { throw ELFError.corrupt(path, reason: "more than one PT_INTERP") }
                guard filesz >= 2, filesz <= 4096 else { throw ELFError.corrupt(path, reason: "PT_INTERP size \(filesz)") }
                let s = try f.bytes(at: offset, count: filesz, what: "PT_INTERP")
                guard let nul = s.firstIndex(of: 0), nul > 0 else {
                    throw ELFError.corrupt(path, reason: "PT_INTERP is not a NUL-terminated path")
                }
                info.interpreter = String(decoding: s[..<nul], as: UTF8.self)
            default:
                continue
            }
        }
        guard let dyn = dynamic else { return info }  // statically linked
        guard dyn.size <= UInt64(maxTable) else { throw ELFError.corrupt(path, reason: "PT_DYNAMIC size \(dyn.size)") }
        let d = try f.bytes(at: dyn.offset, count: dyn.size, what: "PT_DYNAMIC")

        var strtab: UInt64?, strsz: UInt64?
        var neededOffsets: [UInt64] = []
        var sonameOff: UInt64?, rpathOff: UInt64?, runpathOff: UInt64?
        var i = 0
        while i + 16 <= d.count {
            let tag = Int64(bitPattern: le64(d, i)), val = le64(d, i + 8)
            i += 16
            switch tag {
            case dtNull: i = d.count
            case dtNeeded: neededOffsets.append(val)
            case dtStrtab: strtab = val
            case dtStrsz: strsz = val
            case dtSoname: sonameOff = val
            case dtRpath: rpathOff = val
            case dtRunpath: runpathOff = val
            case dtFlags1: info.noDefaultLib = val & df1NoDefLib != 0
            default: continue
            }
        }
        let wanted = neededOffsets + [sonameOff, rpathOff, runpathOff].compactMap { $0 }
        guard !wanted.isEmpty else { return info }
        guard let strAddr = strtab, let strSize = strsz else {
            throw ELFError.corrupt(path, reason: "dynamic section has no DT_STRTAB/DT_STRSZ")
        }
        guard strSize <= UInt64(maxTable) else { throw ELFError.corrupt(path, reason: "DT_STRSZ \(strSize)") }
        // DT_STRTAB is a virtual address: find the PT_LOAD that maps it to a file offset.
        guard let seg = loads.first(where: { strAddr >= $0.vaddr && strAddr - $0.vaddr < $0.filesz }) else {
            throw ELFError.corrupt(path, reason: "DT_STRTAB 0x\(String(strAddr, radix: 16)) is not in any PT_LOAD segment")
        }
        let within = strAddr - seg.vaddr
        guard strSize <= seg.filesz - within else {
            throw ELFError.corrupt(path, reason: "dynamic string table extends past its PT_LOAD segment")
        }
        let (strOffset, overflow) = seg.offset.addingReportingOverflow(within)
        guard !overflow else { throw ELFError.corrupt(path, reason: "DT_STRTAB offset overflows") }
        let table = try f.bytes(at: strOffset, count: strSize, what: "dynamic string table")

        func string(_ off: UInt64, _ what: String) throws -> String {
            guard off < UInt64(table.count), let end = table[Int(off)...].firstIndex(of: 0) else {
                throw ELFError.corrupt(path, reason: "\(what) string offset \(off) is outside the string table")
            }
            return String(decoding: table[Int(off)..<end], as: UTF8.self)
        }
        info.needed = try neededOffsets.map { try string($0, "DT_NEEDED") }
        if let o = sonameOff { info.soname = try string(o, "DT_SONAME") }
        if let o = rpathOff { info.rpath = try string(o, "DT_RPATH") }
        if let o = runpathOff { info.runpath = try string(o, "DT_RUNPATH") }
        // glibc ignores DT_RPATH when DT_RUNPATH is present.
        if info.runpath != nil { info.rpath = nil }
        return info
    }

    static func le16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
    static func le32(_ b: [UInt8], _ o: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[o + $1]) << (8 * UInt32($1)) }
    }
    static func le64(_ b: [UInt8], _ o: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) }
    }
}

/// Bounds-checked pread of an open file.
struct FileReader {
    let fd: Int32
    let size: UInt64
    let path: String

    func bytes(at offset: UInt64, count: UInt64, what: String) throws -> [UInt8] {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard !overflow, end <= size else {
            throw ELFError.corrupt(path, reason: "\(what) (offset \(offset), \(count) bytes) extends past the end of the file (\(size) bytes)")
        }
        guard count > 0 else { return [] }
        let out: [UInt8]
        do { out = try FileIO.pread(fd, count: Int(count), at: offset, what: "read") } catch { throw ELFError.io(path, error) }
        guard out.count == Int(count) else { throw ELFError.corrupt(path, reason: "file shrank while being read") }
        return out
    }
}

// MARK: - /etc/ld.so.conf

enum LDConfig {
    /// Appends the directories of one ld.so.conf file, following `include` globs (relative
    /// patterns are relative to the including file's directory, as ldconfig does).
    static func read(_ file: String, depth: Int, into dirs: inout [String]) {
        guard depth < 8, let text = readSmallFile(file) else { return }
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.prefix { $0 != "#" }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" || $0 == "," || $0 == "=" })
            guard let first = words.first else { continue }
            if first == "include" {
                for pattern in words.dropFirst() {
                    let full = pattern.hasPrefix("/") ? String(pattern) : dirname(file) + "/" + pattern
                    for match in globPaths(full) { read(match, depth: depth + 1, into: &dirs) }
                }
            } else if first == "hwcap" {
                continue
            } else {
                for w in words where w.hasPrefix("/") {
                    var d = String(w)
                    while d.count > 1 && d.hasSuffix("/") { d.removeLast() }
                    if !dirs.contains(d) { dirs.append(d) }
                }
            }
        }
    }

    static func globPaths(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard glob(pattern, 0, nil, &g) == 0 else { return [] }
        var out: [String] = []
        for i in 0..<Int(g.gl_pathc) {
            if let p = g.gl_pathv[i] { out.append(String(cString: p)) }
        }
        return out.sorted()
    }
}

func dirname(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let d = String(path[..<slash])
    return d.isEmpty ? "/" : d
}

func basename(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}

/// A whole small text file (config files); nil if unreadable or larger than `limit`.
func readSmallFile(_ path: String, limit: Int = 1 << 20) -> String? {
    guard let bytes = try? FileIO.readFile(path, limit: limit) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}

// MARK: - Resolution

struct Resolver {
    let searchDirectories: [String]
    var entries: [String: HostEntry] = [:]
    var linkCache: [String: String?] = [:]  // path -> symlink target, or nil for a non-link

    struct Object {
        let path: String      // as found (for $ORIGIN and messages)
        let origin: String
        let info: ELFInfo
        let loader: Int?      // index of the object whose DT_NEEDED brought it in
    }

    init(searchDirectories: [String]) {
        self.searchDirectories = searchDirectories
    }

    mutating func run(_ name: String) throws -> ProgramDependencies {
        guard !name.isEmpty else { throw ELFError.notFound(name) }
        var absolute = name
        if !name.hasPrefix("/") {
            guard let cwd = currentDirectory() else { throw ELFError.io(name, .last("getcwd")) }
            absolute = cwd + "/" + name
        }
        let components = absolute.split(separator: "/")
        guard let base = components.last, base != ".", base != "..", !absolute.hasSuffix("/") else {
            throw ELFError.notRegularFile(name)
        }
        // The guest path is the path as named (so /bin/ls stays /bin/ls and argv[0] keeps a
        // symlink's name): walking it records every symlink on the way, and every real
        // directory on it is a parent of a recorded entry, so it resolves in the guest too.
        // With "." or ".." that no longer holds: use the real directory + the name.
        let program: String
        if components.contains(".") || components.contains("..") {
            program = try canonical(dirname(absolute), for: name).appendingComponent(String(base))
        } else {
            program = "/" + components.joined(separator: "/")
        }
        let real = try record(program, for: name)
        let info = try checkedELF(real, displayName: name, isProgram: true)

        var objects = [Object(path: program, origin: dirname(real), info: info, loader: nil)]
        var libraries: [String: String] = [:]
        var byName: [String: Int] = [:]  // DT_NEEDED names and sonames already loaded
        var realPaths: [String: Int] = [real: 0]
        var guestPath: [String] = []
        var satisfied: Set<String> = []  // names of the interpreter

        if let interp = info.interpreter {
            guard interp.hasPrefix("/") else { throw ELFError.corrupt(name, reason: "PT_INTERP \(interp) is not absolute") }
            let interpReal: String
            do { interpReal = try record(interp, for: interp) } catch ELFError.notFound {
                throw ELFError.libraryNotFound(library: interp, neededBy: name)
            }
            // ld.so is already loaded when libraries are: libc's DT_NEEDED on
            // ld-linux-x86-64.so.2 names it, and needs no search.
            let interpInfo = try checkedELF(interpReal, displayName: interp, isProgram: false)
            satisfied.insert(basename(interp))
            if let so = interpInfo.soname { satisfied.insert(so) }
        }

        // Breadth-first, like ld.so: a name already loaded (by DT_NEEDED name or soname) is reused.
        var next = 0
        while next < objects.count {
            let index = next
            next += 1
            let object = objects[index]
            for needed in object.info.needed {
                if byName[needed] != nil || satisfied.contains(needed) { continue }
                let display = index == 0 ? name : object.path
                guard let found = try search(needed, from: index, objects: objects) else {
                    throw ELFError.libraryNotFound(library: needed, neededBy: display)
                }
                libraries[needed] = found.path
                if found.viaDefault, !ELFDependencies.loaderSystemDirectories.contains(found.dir), !guestPath.contains(found.dir) {
                    guestPath.append(found.dir)
                }
                let real = try record(found.path, for: found.path)
                if let existing = realPaths[real] {
                    byName[needed] = existing
                    continue
                }
                let obj = Object(path: found.path, origin: dirname(found.path), info: found.info, loader: index)
                objects.append(obj)
                realPaths[real] = objects.count - 1
                byName[needed] = objects.count - 1
                if let so = found.info.soname, byName[so] == nil { byName[so] = objects.count - 1 }
            }
        }
        return ProgramDependencies(
            program: program, interpreter: info.interpreter, libraries: libraries,
            entries: entries.values.sorted { $0.path < $1.path }, guestLibraryPath: guestPath)
    }

    struct Found {
        let path: String
        let dir: String
        let info: ELFInfo
        let viaDefault: Bool
    }

    /// One DT_NEEDED lookup for `objects[from]`.
    func search(_ needed: String, from: Int, objects: [Object]) throws -> Found? {
        if needed.contains("/") {
            // Used as a path (relative ones against the current directory, as ld.so does).
            guard let info = try candidate(needed) else { return nil }
            return Found(path: needed, dir: dirname(needed), info: info, viaDefault: false)
        }
        let requester = objects[from]
        var dirs: [String] = []
        if requester.info.runpath == nil {
            var chain: Int? = from
            var seen: Set<Int> = []
            while let c = chain, !seen.contains(c) {
                seen.insert(c)
                dirs += expand(objects[c].info.rpath, origin: objects[c].origin)
                chain = objects[c].loader
            }
        }
        dirs += expand(requester.info.runpath, origin: requester.origin)
        for dir in dirs {
            let path = dir.appendingComponent(needed)
            if let info = try candidate(path) { return Found(path: path, dir: dir, info: info, viaDefault: false) }
        }
        if requester.info.noDefaultLib { return nil }
        for dir in searchDirectories {
            let path = dir.appendingComponent(needed)
            if let info = try candidate(path) { return Found(path: path, dir: dir, info: info, viaDefault: true) }
        }
        return nil
    }

    /// The ELF info of a library candidate; nil if absent or for another class or machine
    /// (the search goes on, as in ld.so), an error if ld.so would fail on it.
    func candidate(_ path: String) throws -> ELFInfo? {
        do {
            return try ELFInfo.read(path)
        } catch let e as ELFError {
            switch e {
            case .notELF: throw ELFError.invalidLibrary(path, reason: "not an ELF file")
            case .notFound, .notRegularFile, .wrongClass, .wrongMachine: return nil
            case .io(_, let error) where error.errno == EACCES: return nil
            default: throw e
            }
        }
    }

    /// Splits an rpath/runpath, expanding $ORIGIN; entries with other $ tokens are dropped.
    func expand(_ list: String?, origin: String) -> [String] {
        guard let list else { return [] }
        var out: [String] = []
        for entry in list.split(separator: ":", omittingEmptySubsequences: true) {
            var s = String(entry)
            s = s.replacing("${ORIGIN}", with: origin).replacing("$ORIGIN", with: origin)
            if s.contains("$") { continue }
            if !s.hasPrefix("/") { continue }  // relative entries depend on the cwd: ignore
            while s.count > 1 && s.hasSuffix("/") { s.removeLast() }
            out.append(s)
        }
        return out
    }

    func checkedELF(_ real: String, displayName: String, isProgram: Bool) throws -> ELFInfo {
        do {
            return try ELFInfo.read(real)
        } catch let e as ELFError {
            // Name the file as the user gave it, not its symlink-resolved path.
            switch e {
            case .notELF: throw ELFError.notELF(displayName)
            case .notFound: throw ELFError.notFound(displayName)
            case .notRegularFile: throw ELFError.notRegularFile(displayName)
            case let .wrongClass(_, d): throw ELFError.wrongClass(displayName, detail: d)
            case let .wrongMachine(_, m): throw ELFError.wrongMachine(displayName, machine: m)
            case let .corrupt(p, r): throw ELFError.corrupt(p == real ? displayName : p, reason: r)
            default: throw e
            }
        }
    }

    // MARK: Paths and symlinks

    /// Resolves `path` like realpath(3), recording every symlink met, and the final regular
    /// file, in `entries`. Returns the real path.
    mutating func record(_ path: String, for display: String) throws -> String {
        let real = try walk(path, display: display)
        var st = stat()
        guard stat(real, &st) == 0 else { throw ELFError.notFound(display) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ELFError.notRegularFile(display) }
        entries[real] = .file(real)
        return real
    }

    /// The real path of a directory, recording the symlinks met.
    mutating func canonical(_ dir: String, for display: String) throws -> String {
        try walk(dir, display: display)
    }

    private mutating func walk(_ path: String, display: String) throws -> String {
        var resolved: [Substring] = []
        var pending: [Substring] = path.split(separator: "/").reversed()
        var hops = 0
        while let part = pending.popLast() {
            if part == "." { continue }
            if part == ".." { _ = resolved.popLast(); continue }
            let here = "/" + (resolved + [part]).joined(separator: "/")
            switch try linkTarget(here, display: display) {
            case let target?:
                hops += 1
                guard hops <= 40 else { throw ELFError.symlinkLoop(display) }
                entries[here] = .symlink(here, target: target)
                if target.hasPrefix("/") { resolved = [] }
                pending += target.split(separator: "/").reversed()
            case nil:
                resolved.append(part)
            }
        }
        return "/" + resolved.joined(separator: "/")
    }

    /// The symlink target of `path`, nil if it is not a symlink; notFound if it is absent.
    private mutating func linkTarget(_ path: String, display: String) throws -> String? {
        if let cached = linkCache[path] { return cached }
        var st = stat()
        guard lstat(path, &st) == 0 else {
            let e = HostError.last("lstat")
            throw e.errno == ENOENT || e.errno == ENOTDIR ? ELFError.notFound(display) : ELFError.io(path, e)
        }
        var result: String?
        if (st.st_mode & S_IFMT) == S_IFLNK {
            var size = max(Int(st.st_size) + 1, 256)
            while true {
                var buf = [UInt8](repeating: 0, count: size)
                let n = buf.withUnsafeMutableBufferPointer { readlink(path, $0.baseAddress!, $0.count) }
                guard n >= 0 else { throw ELFError.io(path, .last("readlink")) }
                if n < size { result = String(decoding: buf[0..<n], as: UTF8.self); break }
                size *= 2
            }
        }
        linkCache[path] = .some(result)
        return result
    }

    func currentDirectory() -> String? {
        var buf = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let ok = buf.withUnsafeMutableBufferPointer { p in
            p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { getcwd($0, p.count) != nil }
        }
        guard ok else { return nil }
        return String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self)
    }
}

extension String {
    func appendingComponent(_ c: String) -> String {
        hasSuffix("/") ? self + c : self + "/" + c
    }
}
