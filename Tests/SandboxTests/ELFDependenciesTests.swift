import Foundation
import XCTest
@testable import Sandbox

func realPath(_ p: String) -> String {
    guard let r = realpath(p, nil) else { return "?" }
    defer { free(r) }
    return String(cString: r)
}

final class ELFDependenciesTests: XCTestCase {
    /// What ldd says (name => path), to compare against; the test may run it, svm may not.
    func lddLibraries(_ program: String) throws -> [String: String] {
        try requireTool("/usr/bin/ldd")
        let (st, out, _) = try runTool("/usr/bin/ldd", [program])
        XCTAssertEqual(st, 0)
        var libs: [String: String] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count >= 3, parts[1] == "=>" { libs[String(parts[0]).trimmingCharacters(in: .whitespaces)] = String(parts[2]) }
        }
        return libs
    }

    func testLsHasItsLoaderAndLibraries() throws {
        let d = try ELFDependencies.resolve(program: "/bin/ls")
        XCTAssertEqual(d.program, "/bin/ls")
        XCTAssertEqual(d.interpreter, "/lib64/ld-linux-x86-64.so.2")
        XCTAssertFalse(d.isStatic)
        for lib in ["libc.so.6", "libselinux.so.1", "libpcre2-8.so.0"] {
            XCTAssertNotNil(d.libraries[lib], lib)
        }
        XCTAssertEqual(d.libraries, try lddLibraries("/bin/ls"))
        XCTAssertEqual(d.guestLibraryPath, [])
        // Every path given is there, and each symlink's target too.
        let paths = Set(d.paths)
        XCTAssertTrue(paths.contains("/bin/ls") || paths.contains("/bin"))
        XCTAssertTrue(paths.contains("/lib64/ld-linux-x86-64.so.2") || paths.contains("/lib64"))
        for entry in d.entries {
            if case let .symlink(path, target) = entry {
                XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: path), target)
            }
        }
        // The real files: the program, the loader, the libraries.
        let files = d.entries.compactMap { if case let .file(p) = $0 { return p } else { return nil } }
        for name in ["/bin/ls", "/lib64/ld-linux-x86-64.so.2"] + d.libraries.values {
            XCTAssertTrue(files.contains(realPath(name)), name)
        }
        XCTAssertEqual(files.count, 5)  // ls, ld.so, libc, libselinux, libpcre2
    }

    /// Reproducing the entries in a directory tree must make every path resolve there.
    func testEntriesRebuildEveryPath() throws {
        let d = try ELFDependencies.resolve(program: "/usr/bin/python3")
        let root = try makeTempDir()
        defer { removeTree(root) }
        let fm = FileManager.default
        for e in d.entries {
            try fm.createDirectory(atPath: root + dirname(e.path), withIntermediateDirectories: true)
            switch e {
            case let .file(p): XCTAssertTrue(fm.createFile(atPath: root + p, contents: Data("x".utf8)))
            case let .symlink(p, t):
                // Absolute targets are rewritten under the fake root only for this check.
                try fm.createSymbolicLink(atPath: root + p, withDestinationPath: t.hasPrefix("/") ? root + t : t)
            }
        }
        for p in [d.program, d.interpreter!] + d.libraries.values {
            XCTAssertTrue(fm.fileExists(atPath: root + p), p)
        }
        XCTAssertEqual(d.program, "/usr/bin/python3")
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: "/usr/bin/python3")
        XCTAssertTrue(d.entries.contains(.symlink("/usr/bin/python3", target: target)))
        XCTAssertEqual(d.libraries, try lddLibraries("/usr/bin/python3"))
    }

    func testStaticBusyboxHasNoInterpreter() throws {
        try requireTool("/bin/busybox")
        let d = try ELFDependencies.resolve(program: "/bin/busybox")
        XCTAssertNil(d.interpreter)
        XCTAssertTrue(d.isStatic)
        XCTAssertEqual(d.libraries, [:])
        XCTAssertEqual(d.entries.filter { if case .file = $0 { return true } else { return false } }.count, 1)
    }

    func testRelativeProgramPathIsMadeAbsolute() throws {
        let cwd = FileManager.default.currentDirectoryPath
        defer { _ = FileManager.default.changeCurrentDirectoryPath(cwd) }
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath("/usr/bin"))
        XCTAssertEqual(try ELFDependencies.resolve(program: "./../bin/ls").program, "/usr/bin/ls")
        XCTAssertEqual(try ELFDependencies.resolve(program: "ls").program, "/usr/bin/ls")
    }

    func testErrorsNameTheFile() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try writeBytes(dir + "/script", Array("#!/bin/sh\necho hi\n".utf8), mode: 0o755)
        try writeBytes(dir + "/empty", [])
        func message(_ p: String) -> String {
            do { _ = try ELFDependencies.resolve(program: p); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(message(dir + "/script"), "\(dir)/script: not an ELF executable (svm run needs a Linux x86-64 program)")
        XCTAssertEqual(message(dir + "/empty"), "\(dir)/empty: not an ELF executable (svm run needs a Linux x86-64 program)")
        XCTAssertEqual(message(dir + "/missing"), "\(dir)/missing: not found")
        XCTAssertEqual(message(dir), "\(dir): not a regular file")
        XCTAssertEqual(message("/nonexistent-dir/x"), "/nonexistent-dir/x: not found")
        // Wrong class and machine, by patching a copy of ls.
        var ls = try readBytes("/bin/ls")
        ls[4] = 1
        try writeBytes(dir + "/ls32", ls)
        XCTAssertEqual(message(dir + "/ls32"), "\(dir)/ls32: 32-bit ELF, not x86-64 (svm run needs a Linux x86-64 program)")
        ls[4] = 2
        ls[18] = 183
        ls[19] = 0
        try writeBytes(dir + "/lsarm", ls)
        XCTAssertEqual(message(dir + "/lsarm"), "\(dir)/lsarm: ELF for machine 183 (AArch64), not x86-64 (svm run needs a Linux x86-64 program)")
    }

    func testTruncatedCopiesAreErrorsNotCrashes() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let ls = try readBytes("/bin/ls")
        for cut in [1, 3, 4, 5, 16, 63, 64, 65, 100, 64 + 56, 64 + 56 * 3 + 7, 600, 1000, 4096, 10000,
                    50000, ls.count / 2, ls.count - 100, ls.count - 1] {
            let p = dir + "/ls-\(cut)"
            try writeBytes(p, Array(ls[0..<cut]))
            XCTAssertThrowsError(try ELFDependencies.resolve(program: p), "cut at \(cut)") { e in
                XCTAssertTrue(e is ELFError)
                XCTAssertTrue("\(e)".hasPrefix(p + ": "), "\(e)")
            }
        }
    }

    func testCorruptHeadersAreErrors() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let ls = try readBytes("/bin/ls")
        func patched(_ name: String, _ change: (inout [UInt8]) -> Void) throws -> String {
            var b = ls
            change(&b)
            try writeBytes(dir + "/" + name, b)
            return dir + "/" + name
        }
        func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) { for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        let cases: [(String, (inout [UInt8]) -> Void)] = [
            ("phoff-huge", { put64(&$0, 32, 0xffff_ffff_ffff_fff0) }),
            ("phoff-past-end", { put64(&$0, 32, UInt64(ls.count - 8)) }),
            ("phentsize-small", { $0[54] = 8; $0[55] = 0 }),
            ("phnum-xnum", { $0[56] = 0xff; $0[57] = 0xff }),
            ("type-rel", { $0[16] = 1; $0[17] = 0 }),
            ("class-bad", { $0[4] = 9 }),
        ]
        for (name, change) in cases {
            let p = try patched(name, change)
            XCTAssertThrowsError(try ELFDependencies.resolve(program: p), name) {
                guard case .corrupt? = $0 as? ELFError else { return XCTFail("\(name): \($0)") }
            }
        }
    }

    /// Random byte changes in the headers of ls: any outcome but a crash is fine.
    func testMutatedHeadersNeverCrash() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let ls = try readBytes("/bin/ls")
        var x: UInt64 = 0x9e37_79b9_7f4a_7c15
        func next() -> UInt64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
        let p = dir + "/m"
        for _ in 0..<150 {
            var b = ls
            for _ in 0..<(1 + Int(next() % 4)) {
                let at = Int(next() % 1024)
                b[at] = UInt8(truncatingIfNeeded: next())
            }
            try writeBytes(p, b)
            _ = try? ELFInfo.read(p)
        }
    }

    func testResolveProgramSearchesLikeExecvp() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try writeBytes(dir + "/ls", [], mode: 0o644)  // not executable: skipped
        try FileManager.default.createDirectory(atPath: dir + "/sub/cat", withIntermediateDirectories: true)
        XCTAssertEqual(resolveProgram("ls", path: "/nonexistent:\(dir):/usr/bin:/bin"), "/usr/bin/ls")
        XCTAssertEqual(resolveProgram("cat", path: "\(dir)/sub:/bin"), "/bin/cat")  // directories skipped
        XCTAssertEqual(resolveProgram("./x/y", path: "/bin"), "./x/y")
        XCTAssertEqual(resolveProgram("/no/such", path: "/bin"), "/no/such")
        XCTAssertNil(resolveProgram("no-such-program-svm", path: "/bin:/usr/bin"))
        XCTAssertNil(resolveProgram("", path: "/bin"))
    }

    func testLdSoConfIncludesAreFollowed() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try FileManager.default.createDirectory(atPath: dir + "/conf.d", withIntermediateDirectories: true)
        try writeBytes(dir + "/ld.so.conf", Array("# comment\n/opt/a:/opt/b\ninclude conf.d/*.conf\n/opt/z/\n".utf8))
        try writeBytes(dir + "/conf.d/2.conf", Array("/opt/d # trailing\n".utf8))
        try writeBytes(dir + "/conf.d/1.conf", Array("/opt/c,/opt/a\n".utf8))
        let dirs = ELFDependencies.hostSearchDirectories(config: dir + "/ld.so.conf")
        XCTAssertEqual(Array(dirs.prefix(6)), ["/opt/a", "/opt/b", "/opt/c", "/opt/d", "/opt/z", "/lib/x86_64-linux-gnu"])
        XCTAssertEqual(Array(dirs.suffix(6)), ELFDependencies.defaultDirectories)
    }

    // MARK: - Built programs: $ORIGIN, RPATH vs RUNPATH, skipping wrong candidates

    /// Builds lib/libsbt.so (needing libsbt2.so from lib2) and a program linked with `flags`.
    func buildLayout(_ dir: String, programFlags: [String]) throws {
        try requireTool("/usr/bin/gcc")
        let fm = FileManager.default
        for d in ["lib", "lib2", "bad", "bin"] { try fm.createDirectory(atPath: dir + "/" + d, withIntermediateDirectories: true) }
        try writeBytes(dir + "/b.c", Array("int sbt2(void) { return 2; }\n".utf8))
        try writeBytes(dir + "/a.c", Array("int sbt2(void); int sbt(void) { return sbt2() + 1; }\n".utf8))
        try writeBytes(dir + "/m.c", Array("int sbt(void); int main(void) { return sbt(); }\n".utf8))
        func gcc(_ args: [String]) throws {
            let (st, _, err) = try runTool("/usr/bin/gcc", args, cwd: dir)
            XCTAssertEqual(st, 0, err)
            if st != 0 { throw TestFailure("gcc failed: \(err)") }
        }
        try gcc(["-shared", "-fPIC", "-o", "lib2/libsbt2.so", "b.c", "-Wl,-soname,libsbt2.so"])
        // libsbt.so finds libsbt2.so through its own $ORIGIN-relative runpath.
        try gcc(["-shared", "-fPIC", "-o", "lib/libsbt.so", "a.c", "-Wl,-soname,libsbt.so", "-Llib2", "-lsbt2",
                 "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib2"])
        try gcc(["-o", "bin/prog", "m.c", "-Llib", "-lsbt", "-Wl,-rpath-link,lib2"] + programFlags)
        // Same-named files for another class and machine, earlier in the search: skipped.
        var lib = try readBytes(dir + "/lib/libsbt.so")
        lib[4] = 1
        try writeBytes(dir + "/bad/libsbt.so", lib)
        lib[4] = 2
        lib[18] = 183
        try FileManager.default.createDirectory(atPath: dir + "/bad2", withIntermediateDirectories: true)
        try writeBytes(dir + "/bad2/libsbt.so", lib)
    }

    func testOriginInRpathAndRunpath() throws {
        for dtags in ["--disable-new-dtags", "--enable-new-dtags"] {
            let dir = try makeTempDir()
            defer { removeTree(dir) }
            try buildLayout(dir, programFlags: ["-Wl,\(dtags),-rpath,$ORIGIN/../bad:$ORIGIN/../bad2:$ORIGIN/../lib"])
            let d = try ELFDependencies.resolve(program: dir + "/bin/prog", searchDirectories: ELFDependencies.defaultDirectories)
            XCTAssertEqual(d.libraries["libsbt.so"], dir + "/bin/../lib/libsbt.so", dtags)
            // $ORIGIN of a library is the directory it was found in, not canonicalized (glibc).
            XCTAssertEqual(d.libraries["libsbt2.so"], dir + "/bin/../lib/../lib2/libsbt2.so", dtags)
            XCTAssertTrue(d.entries.contains(.file(dir + "/lib/libsbt.so")), dtags)
            XCTAssertTrue(d.entries.contains(.file(dir + "/lib2/libsbt2.so")), dtags)
            XCTAssertEqual(d.guestLibraryPath, [])
            let (st, _, _) = try runTool(dir + "/bin/prog", [])
            XCTAssertEqual(st, 3)  // the layout really works
        }
    }

    /// DT_RPATH of the program applies to its libraries' needs too; DT_RUNPATH does not.
    func testRpathIsInheritedButRunpathIsNot() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try requireTool("/usr/bin/gcc")
        let fm = FileManager.default
        for d in ["lib", "lib2", "bin"] { try fm.createDirectory(atPath: dir + "/" + d, withIntermediateDirectories: true) }
        try writeBytes(dir + "/b.c", Array("int sbt2(void) { return 2; }\n".utf8))
        try writeBytes(dir + "/a.c", Array("int sbt2(void); int sbt(void) { return sbt2() + 1; }\n".utf8))
        try writeBytes(dir + "/m.c", Array("int sbt(void); int main(void) { return sbt(); }\n".utf8))
        for args in [["-shared", "-fPIC", "-o", "lib2/libsbt2.so", "b.c"],
                     ["-shared", "-fPIC", "-o", "lib/libsbt.so", "a.c", "-Llib2", "-lsbt2"],  // no rpath of its own
                     ["-o", "bin/rpath", "m.c", "-Llib", "-lsbt", "-Wl,-rpath-link,lib2", "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib:$ORIGIN/../lib2"],
                     ["-o", "bin/runpath", "m.c", "-Llib", "-lsbt", "-Wl,-rpath-link,lib2", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib:$ORIGIN/../lib2"]] {
            let (st, _, err) = try runTool("/usr/bin/gcc", args, cwd: dir)
            XCTAssertEqual(st, 0, err)
        }
        let d = try ELFDependencies.resolve(program: dir + "/bin/rpath", searchDirectories: ELFDependencies.defaultDirectories)
        XCTAssertEqual(d.libraries["libsbt2.so"], dir + "/bin/../lib2/libsbt2.so")
        XCTAssertThrowsError(try ELFDependencies.resolve(program: dir + "/bin/runpath", searchDirectories: ELFDependencies.defaultDirectories)) {
            XCTAssertEqual("\($0)", "libsbt2.so needed by \(dir)/bin/../lib/libsbt.so: not found")
        }
        // ld.so agrees on both.
        XCTAssertEqual(try runTool(dir + "/bin/rpath", []).0, 3)
        XCTAssertNotEqual(try runTool(dir + "/bin/runpath", []).0, 3)
        // Found through a configured directory the guest loader does not know: LD_LIBRARY_PATH.
        let e = try ELFDependencies.resolve(program: dir + "/bin/runpath",
                                            searchDirectories: [dir + "/lib2"] + ELFDependencies.defaultDirectories)
        XCTAssertEqual(e.libraries["libsbt2.so"], dir + "/lib2/libsbt2.so")
        XCTAssertEqual(e.guestLibraryPath, [dir + "/lib2"])
    }

    func testNonELFCandidateIsAnErrorAsInLdSo() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try buildLayout(dir, programFlags: ["-Wl,-rpath,$ORIGIN/../bad:$ORIGIN/../lib"])
        try writeBytes(dir + "/bad/libsbt.so", Array("not a library".utf8))
        XCTAssertThrowsError(try ELFDependencies.resolve(program: dir + "/bin/prog", searchDirectories: [])) {
            XCTAssertEqual("\($0)", "\(dir)/bin/../bad/libsbt.so: invalid shared library: not an ELF file")
        }
    }

    func testMissingLibraryIsNamed() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try buildLayout(dir, programFlags: ["-Wl,-rpath,$ORIGIN/../lib"])
        try FileManager.default.removeItem(atPath: dir + "/lib/libsbt.so")
        XCTAssertThrowsError(try ELFDependencies.resolve(program: dir + "/bin/prog", searchDirectories: ELFDependencies.defaultDirectories)) {
            XCTAssertEqual("\($0)", "libsbt.so needed by \(dir)/bin/prog: not found")
        }
    }
}
