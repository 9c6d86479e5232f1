import Glibc
import XCTest

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A fresh directory under /tmp, removed at the end of the test.
func makeTempDir(_ test: XCTestCase, _ tag: String = "runnertest") throws -> String {
    var template = Array("/tmp/\(tag).XXXXXX".utf8CString)
    guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw TestFailure("mkdtemp failed")
    }
    let path = String(cString: p)
    test.addTeardownBlock { _ = hostShell(["/bin/rm", "-rf", path]) }
    return path
}

func writeFile(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
    guard fd >= 0 else { throw TestFailure("cannot create \(path)") }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
        throw TestFailure("short write to \(path)")
    }
    fchmod(fd, mode)
}

func readFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw TestFailure("cannot open \(path)") }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = read(fd, &buf, buf.count)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

/// Runs a host command, returns its status.
@discardableResult
func hostShell(_ argv: [String]) -> Int32 {
    var pid: pid_t = 0
    let cargs = argv.map { strdup($0) } + [nil]
    defer { cargs.forEach { free($0) } }
    guard posix_spawn(&pid, argv[0], nil, nil, cargs, environ) == 0 else { return -1 }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return (status >> 8) & 0xff
}

/// One newc entry, read back from an archive.
struct CPIOEntry {
    var name: String
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var rdevMajor: UInt32
    var rdevMinor: UInt32
    var data: [UInt8]
    var type: UInt32 { mode & 0o170000 }
    var permissions: UInt32 { mode & 0o7777 }
}

/// A small newc reader: the entries before the trailer, keyed by name.
func readNewc(_ b: [UInt8]) throws -> [String: CPIOEntry] {
    var off = 0
    var entries: [String: CPIOEntry] = [:]
    func hex(_ at: Int) throws -> UInt32 {
        guard at + 8 <= b.count, let v = UInt32(String(decoding: b[at..<at + 8], as: UTF8.self), radix: 16) else {
            throw TestFailure("bad header field at \(at)")
        }
        return v
    }
    func align() { off = (off + 3) & ~3 }
    while true {
        guard off + 110 <= b.count, Array(b[off..<off + 6]) == Array("070701".utf8) else {
            throw TestFailure("bad header at \(off)")
        }
        var f: [UInt32] = []
        for i in 0..<13 { f.append(try hex(off + 6 + 8 * i)) }
        let nameSize = Int(f[11]), fileSize = Int(f[6])
        let name = String(decoding: b[(off + 110)..<(off + 110 + nameSize - 1)], as: UTF8.self)
        off += 110 + nameSize
        align()
        let data = Array(b[off..<off + fileSize])
        off += fileSize
        align()
        if name == "TRAILER!!!" { return entries }
        entries[name] = CPIOEntry(name: name, mode: f[1], uid: f[2], gid: f[3], rdevMajor: f[9], rdevMinor: f[10], data: data)
    }
}
