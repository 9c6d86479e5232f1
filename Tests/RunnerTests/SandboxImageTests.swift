import Glibc
@testable import Runner
@testable import Sandbox
import XCTest

final class SandboxImageTests: XCTestCase {
    var tmp = ""
    var fakeInit = ""
    var env: [String: String] = [:]

    override func setUpWithError() throws {
        tmp = try makeTempDir(self)
        fakeInit = tmp + "/svm-init"
        try writeFile(fakeInit, "not really an init", mode: 0o755)
        XCTAssertEqual(mkdir(tmp + "/scratch", 0o755), 0)
        env = ["PATH": "/usr/bin:/bin", "TMPDIR": tmp + "/scratch"]
    }

    func scratchIsEmpty() -> Bool { TemporaryDirectory.directoryEntries(tmp + "/scratch").isEmpty }

    func build(_ request: RunRequest, stdin: Bool = false, notes: UnsafeMutablePointer<[String]>? = nil) throws -> (SandboxImage, [String: CPIOEntry]) {
        var collected: [String] = []
        let image = try SandboxImage.build(request: request, initBinary: fakeInit, forwardStdin: stdin,
                                           environment: env, note: { collected.append($0) })
        notes?.pointee = collected
        addTeardownBlock { image.directory.remove() }
        let entries = try readNewc(try readFile(image.initrdPath))
        return (image, entries)
    }

    func testEchoWithItsLibrariesAndTheInitLayout() throws {
        let (image, entries) = try build(RunRequest(program: "echo", arguments: ["hello"]))
        // A private directory under $TMPDIR.
        XCTAssertTrue(image.directory.path.hasPrefix(tmp + "/scratch/svm-run."), image.directory.path)
        var st = stat()
        XCTAssertEqual(stat(image.directory.path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o700)

        // The root directory is root's and not world-writable (the tmpfs default is 1777).
        let root = try XCTUnwrap(entries["."])
        XCTAssertEqual(root.mode, UInt32(S_IFDIR) | 0o755)
        XCTAssertEqual([root.uid, root.gid], [0, 0])
        let initEntry = try XCTUnwrap(entries["init"])
        XCTAssertEqual(initEntry.data, Array("not really an init".utf8))
        XCTAssertEqual(initEntry.permissions, 0o755)
        let console = try XCTUnwrap(entries["dev/console"])
        XCTAssertEqual(console.type, UInt32(S_IFCHR))
        XCTAssertEqual([console.rdevMajor, console.rdevMinor], [5, 1])
        XCTAssertEqual(try XCTUnwrap(entries["svm/job"]).data, try JobWriter.encode(image.job))

        // echo resolved on PATH, and every file and symlink the loader needs, byte for byte.
        XCTAssertEqual(image.job.argv, [image.dependencies.program, "hello"])
        XCTAssertTrue(image.dependencies.program.hasSuffix("/echo"))
        XCTAssertFalse(image.dependencies.entries.isEmpty)
        for dep in image.dependencies.entries {
            let name = String(dep.path.dropFirst())
            let entry = try XCTUnwrap(entries[name], "\(name) missing")
            switch dep {
            case let .file(p):
                XCTAssertEqual(entry.type, UInt32(S_IFREG), p)
                XCTAssertEqual(entry.data, try readFile(p), p)
            case let .symlink(p, target):
                XCTAssertEqual(entry.type, UInt32(S_IFLNK), p)
                XCTAssertEqual(String(decoding: entry.data, as: UTF8.self), target, p)
            }
        }
        let names = Set(entries.keys)
        XCTAssertTrue(names.contains { $0.hasSuffix("/libc.so.6") }, "\(names.sorted())")
        XCTAssertTrue(names.contains { $0.hasSuffix("ld-linux-x86-64.so.2") }, "\(names.sorted())")
        XCTAssertEqual(image.size, UInt64(try readFile(image.initrdPath).count))

        image.directory.remove()
        XCTAssertTrue(scratchIsEmpty())
    }

    func testJobContents() throws {
        var request = RunRequest(program: "/bin/echo", environment: ["A=1", "PATH=/opt/bin", "B=x=y"])
        request.volumes = [.init(hostPath: tmp, guestPath: "/data", readOnly: true)]
        let (image, _) = try build(request, stdin: true)
        let job = image.job
        XCTAssertEqual(job.uid, 65534)
        XCTAssertEqual(job.gid, 65534)
        XCTAssertTrue(job.hasStdin)
        XCTAssertFalse(job.tty)
        XCTAssertEqual(job.workdir, "/tmp")
        XCTAssertEqual(job.volumes, [.init(guestPath: "/data", readOnly: true)])
        // The user's PATH replaces svm's in place; the rest keep their order.
        XCTAssertEqual(job.env.first, "PATH=/opt/bin")
        XCTAssertEqual(Array(job.env.suffix(2)), ["A=1", "B=x=y"])
        XCTAssertEqual(job.env.filter { $0.hasPrefix("PATH=") }.count, 1)

        request.root = true
        request.workdir = "/"
        request.environment = []
        let (rootImage, _) = try build(request)
        XCTAssertEqual(rootImage.job.uid, 0)
        XCTAssertEqual(rootImage.job.gid, 0)
        XCTAssertFalse(rootImage.job.hasStdin)
        XCTAssertEqual(rootImage.job.workdir, "/")
        XCTAssertEqual(rootImage.job.env.first, "PATH=/usr/local/bin:/usr/bin:/bin")
    }

    func testLibraryPathOnlyWhenTheLoaderNeedsIt() {
        let deps = ProgramDependencies(program: "/p", interpreter: nil, libraries: [:], entries: [],
                                       guestLibraryPath: ["/opt/lib", "/usr/lib64"])
        let job = SandboxImage.makeJob(request: RunRequest(program: "/p"), dependencies: deps, forwardStdin: false)
        XCTAssertEqual(job.env, ["PATH=/usr/local/bin:/usr/bin:/bin", "LD_LIBRARY_PATH=/opt/lib:/usr/lib64"])
        var plain = deps
        plain.guestLibraryPath = []
        XCTAssertEqual(SandboxImage.makeJob(request: RunRequest(program: "/p"), dependencies: plain, forwardStdin: false).env,
                       ["PATH=/usr/local/bin:/usr/bin:/bin"])
    }

    /// Live volumes are marked for the init and leave nothing in the image; --user sets
    /// uid and gid (gid = uid unless given).
    func testLiveVolumesAndUser() throws {
        let deps = ProgramDependencies(program: "/p", interpreter: nil, libraries: [:], entries: [], guestLibraryPath: [])
        var request = RunRequest(program: "/p", volumes: [.init(hostPath: "/a", guestPath: "/data"), .init(hostPath: "/b", guestPath: "/ro", readOnly: true)])
        request.userID = 1000
        let job = SandboxImage.makeJob(request: request, dependencies: deps, forwardStdin: false, liveVolumes: true)
        XCTAssertEqual(job.volumes, [.init(guestPath: "/data", readOnly: false, live: true), .init(guestPath: "/ro", readOnly: true, live: true)])
        XCTAssertEqual(job.uid, 1000)
        XCTAssertEqual(job.gid, 1000)
        request.groupID = 5
        XCTAssertEqual(SandboxImage.makeJob(request: request, dependencies: deps, forwardStdin: false).gid, 5)
        XCTAssertEqual(SandboxImage.makeJob(request: request, dependencies: deps, forwardStdin: false).volumes.map(\.live), [false, false])

        let vol = tmp + "/livevol"
        XCTAssertEqual(mkdir(vol, 0o755), 0)
        try writeFile(vol + "/big.txt", String(repeating: "x", count: 100_000), mode: 0o644)
        var copied = RunRequest(program: "/bin/true", volumes: [.init(hostPath: vol, guestPath: "/data")])
        copied.copyVolumes = true
        let (copy, _) = try build(copied)
        let live = try SandboxImage.build(request: copied, initBinary: fakeInit, forwardStdin: false, liveVolumes: true,
                                          environment: ["TMPDIR": tmp])
        defer { live.directory.remove() }
        XCTAssertLessThan(live.size + 90_000, copy.size, "a live volume is not in the image")
        XCTAssertEqual(live.copiedIn, [[]])
    }

    func testVolumesAreCopiedWithOwnershipAndOddEntriesSkipped() throws {
        let vol = tmp + "/vol"
        XCTAssertEqual(mkdir(vol, 0o750), 0)
        XCTAssertEqual(mkdir(vol + "/sub", 0o755), 0)
        try writeFile(vol + "/a.txt", "alpha", mode: 0o600)
        try writeFile(vol + "/sub/b.bin", "\u{0}\u{1}beta", mode: 0o4755)
        XCTAssertEqual(symlink("sub/b.bin", vol + "/link"), 0)
        XCTAssertEqual(symlink("/nowhere", vol + "/dangling"), 0)
        XCTAssertEqual(mkfifo(vol + "/fifo", 0o644), 0)

        var notes: [String] = []
        let request = RunRequest(program: "/bin/echo", volumes: [.init(hostPath: tmp + "/scratch", guestPath: "/empty"),
                                                                .init(hostPath: vol, guestPath: "/v", readOnly: true)])
        let (_, entries) = try build(request, notes: &notes)
        // Volume 0 holds svm's own temporary directory, which is never copied into itself.
        XCTAssertEqual(try XCTUnwrap(entries["svm/volumes/0"]).type, UInt32(S_IFDIR))
        XCTAssertEqual(entries.keys.filter { $0.hasPrefix("svm/volumes/0/") }, [])
        let root = try XCTUnwrap(entries["svm/volumes/1"])
        XCTAssertEqual(root.type, UInt32(S_IFDIR))
        XCTAssertEqual(root.permissions, 0o750)
        let a = try XCTUnwrap(entries["svm/volumes/1/a.txt"])
        XCTAssertEqual(a.data, Array("alpha".utf8))
        XCTAssertEqual(a.permissions, 0o600)
        XCTAssertEqual([a.uid, a.gid], [65534, 65534])
        let b = try XCTUnwrap(entries["svm/volumes/1/sub/b.bin"])
        XCTAssertEqual(b.data, [0, 1] + Array("beta".utf8))
        XCTAssertEqual(b.permissions, 0o755, "setuid is dropped")
        XCTAssertEqual(try XCTUnwrap(entries["svm/volumes/1/link"]).data, Array("sub/b.bin".utf8))
        XCTAssertEqual(try XCTUnwrap(entries["svm/volumes/1/link"]).type, UInt32(S_IFLNK))
        XCTAssertEqual(try XCTUnwrap(entries["svm/volumes/1/dangling"]).data, Array("/nowhere".utf8))
        XCTAssertNil(entries["svm/volumes/1/fifo"])
        XCTAssertEqual(notes.count, 1, "\(notes)")
        XCTAssertTrue(notes.first?.contains("fifo") == true && notes.first?.contains("FIFO") == true, "\(notes)")
    }

    func assertRefused(_ request: RunRequest, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try SandboxImage.build(request: request, initBinary: fakeInit, forwardStdin: false, environment: env)
            XCTFail("built", file: file, line: line)
        } catch {
            XCTAssertTrue(error.description.contains(expected), error.description, file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), file: file, line: line)
            XCTAssertNil(error.signal, file: file, line: line)
        }
        XCTAssertTrue(scratchIsEmpty(), "left behind: \(TemporaryDirectory.directoryEntries(tmp + "/scratch"))", file: file, line: line)
    }

    func testBadInputIsRefusedAndLeavesNothing() throws {
        assertRefused(RunRequest(program: "no-such-program-here"), "no-such-program-here: program not found")
        assertRefused(RunRequest(program: "/nonexistent/prog"), "/nonexistent/prog: not found")
        let script = tmp + "/script.sh"
        try writeFile(script, "#!/bin/sh\necho hi\n", mode: 0o755)
        assertRefused(RunRequest(program: script), "not an ELF executable")
        assertRefused(RunRequest(program: "/bin/echo", volumes: [.init(hostPath: tmp + "/missing", guestPath: "/m")]),
                      "--volume \(tmp)/missing: stat failed: No such file or directory (errno 2)")
        assertRefused(RunRequest(program: "/bin/echo", volumes: [.init(hostPath: fakeInit, guestPath: "/m")]),
                      "not a directory")
        // A program under /tmp would be hidden by the guest's own /tmp.
        let copy = tmp + "/echo"
        XCTAssertEqual(hostShell(["/bin/cp", "/bin/echo", copy]), 0)
        assertRefused(RunRequest(program: copy), "the guest mounts its own /tmp")
        // No init: the build says how to get one.
        do {
            _ = try SandboxImage.build(request: RunRequest(program: "/bin/echo"), initBinary: tmp + "/none",
                                       forwardStdin: false, environment: env)
            XCTFail("built without an init")
        } catch {
            XCTAssertTrue(error.description.contains("scripts/build-init"), error.description)
        }
        XCTAssertTrue(scratchIsEmpty())
    }

    func testInterruptedWhileCopyingAVolumeCleansUp() throws {
        let request = RunRequest(program: "/bin/echo", volumes: [.init(hostPath: "/bin", guestPath: "/b")])
        do {
            _ = try SandboxImage.build(request: request, initBinary: fakeInit, forwardStdin: false,
                                       environment: env, interrupted: { SIGTERM })
            XCTFail("built")
        } catch {
            XCTAssertEqual(error.signal, SIGTERM)
        }
        XCTAssertTrue(scratchIsEmpty())
    }
}
