import Foundation
import XCTest

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A fresh directory under /tmp, removed by the caller's `defer`.
func makeTempDir(_ tag: String = "sbtest") throws -> String {
    var template = Array("/tmp/\(tag).XXXXXX".utf8CString)
    guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw TestFailure("mkdtemp failed")
    }
    return String(cString: p)
}

func removeTree(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

func readBytes(_ path: String) throws -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: path) else { throw TestFailure("cannot read \(path)") }
    return [UInt8](d)
}

func writeBytes(_ path: String, _ bytes: [UInt8], mode: Int = 0o644) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes),
                                         attributes: [.posixPermissions: mode]) else {
        throw TestFailure("cannot write \(path)")
    }
}

/// Runs a host tool; returns (status, stdout, stderr).
@discardableResult
func runTool(_ path: String, _ args: [String], cwd: String? = nil) throws -> (Int32, String, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

func requireTool(_ path: String) throws {
    guard access(path, X_OK) == 0 else { throw XCTSkip("\(path) is not installed") }
}

/// The repository root (Tests/SandboxTests/Support.swift is two levels down).
let repoRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

/// A newc entry as parsed back by `parseNewc`.
struct NewcEntry: Equatable {
    var name: String
    var ino, mode, uid, gid, nlink, mtime, rdevMajor, rdevMinor: UInt32
    var data: [UInt8]
}

/// An independent newc reader: checks the magic, that every header and every data block
/// starts on a 4-byte boundary, that padding is zeros, and that the archive ends with the
/// trailer. Returns the entries before the trailer.
func parseNewc(_ b: [UInt8]) throws -> [NewcEntry] {
    var off = 0
    var entries: [NewcEntry] = []
    func hex(_ at: Int) throws -> UInt32 {
        guard let s = String(bytes: b[at..<at + 8], encoding: .ascii), let v = UInt32(s, radix: 16),
              s.uppercased() == s else { throw TestFailure("bad hex field at \(at)") }
        return v
    }
    func skipPad() throws {
        while off % 4 != 0 {
            guard off < b.count, b[off] == 0 else { throw TestFailure("non-zero or missing padding at \(off)") }
            off += 1
        }
    }
    while true {
        guard off % 4 == 0 else { throw TestFailure("header at unaligned offset \(off)") }
        guard off + 110 <= b.count else { throw TestFailure("truncated header at \(off)") }
        guard Array(b[off..<off + 6]) == Array("070701".utf8) else { throw TestFailure("bad magic at \(off)") }
        var f: [UInt32] = []
        for i in 0..<13 { f.append(try hex(off + 6 + 8 * i)) }
        let namesize = Int(f[11]), filesize = Int(f[6])
        guard f[12] == 0 else { throw TestFailure("check field not 0") }
        guard off + 110 + namesize <= b.count, namesize >= 1, b[off + 110 + namesize - 1] == 0 else {
            throw TestFailure("bad name at \(off)")
        }
        let name = String(decoding: b[(off + 110)..<(off + 110 + namesize - 1)], as: UTF8.self)
        off += 110 + namesize
        try skipPad()
        guard off + filesize <= b.count else { throw TestFailure("truncated data for \(name)") }
        let data = Array(b[off..<off + filesize])
        off += filesize
        try skipPad()
        if name == "TRAILER!!!" {
            guard off == b.count else { throw TestFailure("bytes after trailer") }
            return entries
        }
        entries.append(NewcEntry(name: name, ino: f[0], mode: f[1], uid: f[2], gid: f[3], nlink: f[4], mtime: f[5],
                                 rdevMajor: f[9], rdevMinor: f[10], data: data))
    }
}
