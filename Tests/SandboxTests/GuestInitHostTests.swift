import Foundation
import XCTest
@testable import Sandbox

/// Runs firmware/init/svm-init.c built with -DSVM_INIT_HOST_TEST on the host: the real job
/// parser, fork/exec and stream copying, with files for the channels (fd 1 = hvc0,
/// fd 2 = hvc1, fd 3 = control input, fd 4 = control output).
final class GuestInitHostTests: XCTestCase {
    nonisolated(unsafe) static var binary: String?

    func hostInit() throws -> String {
        if let b = Self.binary { return b }
        try requireTool("/usr/bin/gcc")
        let dir = try makeTempDir("sbinit")
        let out = dir + "/svm-init-host"
        let (st, _, err) = try runTool("/usr/bin/gcc", ["-DSVM_INIT_HOST_TEST", "-O1", "-Wall", "-Wextra", "-Werror",
                                                        "-o", out, repoRoot + "/firmware/init/svm-init.c"])
        guard st == 0 else { throw TestFailure("gcc: \(err)") }
        Self.binary = out
        return out
    }

    struct Run {
        var status: Int32
        var stdout: [UInt8]
        var stderr: [UInt8]
        var frames: [GuestFrame]
        var seconds: Double
    }

    /// Spawns the host-test init with `args` and the channels as files. With `marker`, the
    /// control input is a pipe instead: `control` goes in at once, `later` once the program
    /// has written `marker` to stdout (so it has set up whatever it must before, such as a
    /// signal trap), then the pipe is closed.
    /// With `framesDone`, `later` waits instead until the control output's frames satisfy it.
    func spawn(_ args: [String], control: [UInt8], later: [UInt8] = [], after marker: String? = nil,
               framesDone: (([GuestFrame]) -> Bool)? = nil) throws -> Run {
        let piped = marker != nil || framesDone != nil
        let bin = try hostInit()
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        var ctl: [Int32] = [-1, -1]
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, dir + "/out", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&fa, 2, dir + "/err", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if !piped {
            try writeBytes(dir + "/ctl-in", control)
            posix_spawn_file_actions_addopen(&fa, 3, dir + "/ctl-in", O_RDONLY, 0)
        } else {
            // fds 0-2 are open here, so the pipe gets 3 or above and ctl[0] < ctl[1].
            guard pipe(&ctl) == 0 else { throw TestFailure("pipe: \(errno)") }
            for fd in ctl { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }  // no leak into other children
            posix_spawn_file_actions_adddup2(&fa, ctl[0], 3)  // clears close-on-exec on 3
            if ctl[0] != 3 { posix_spawn_file_actions_addclose(&fa, ctl[0]) }
            posix_spawn_file_actions_addclose(&fa, ctl[1])
        }
        defer { for fd in ctl where fd >= 0 { close(fd) } }
        posix_spawn_file_actions_addopen(&fa, 4, dir + "/ctl-out", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([bin] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let start = Date()
        let rc = posix_spawn(&pid, bin, &fa, nil, argv, environ)
        guard rc == 0 else { throw TestFailure("posix_spawn: \(rc)") }
        if piped {
            close(ctl[0])
            ctl[0] = -1
            // The init may be gone before it read everything: EPIPE, not a SIGPIPE death.
            signal(SIGPIPE, SIG_IGN)
            func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { write(ctl[1], $0.baseAddress, $0.count) } }
            send(control)
            let deadline = Date().addingTimeInterval(20)
            func done() -> Bool {
                if let marker { return String(decoding: (try? readBytes(dir + "/out")) ?? [], as: UTF8.self).contains(marker) }
                var decoder = ControlFrameDecoder()
                return framesDone!((try? decoder.feed((try? readBytes(dir + "/ctl-out")) ?? [])) ?? [])
            }
            while !done(), Date() < deadline {
                usleep(10_000)
            }
            send(later)
            close(ctl[1])
            ctl[1] = -1
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        var decoder = ControlFrameDecoder()
        let frames = try decoder.feed(try readBytes(dir + "/ctl-out"))
        XCTAssertEqual(decoder.bufferedCount, 0, "partial frame left on the control channel")
        return Run(status: status, stdout: try readBytes(dir + "/out"), stderr: try readBytes(dir + "/err"),
                   frames: frames, seconds: Date().timeIntervalSince(start))
    }

    func run(_ job: SandboxJob, control: [HostFrame] = []) throws -> Run {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try writeBytes(dir + "/job", try JobWriter.encode(job))
        return try spawn([dir + "/job"], control: control.flatMap { $0.encoded() })
    }

    /// Runs `script` under /bin/sh and sends `stop` once it has printed "ready".
    func stop(_ script: String, _ stop: [UInt8]) throws -> Run {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try writeBytes(dir + "/job", try JobWriter.encode(SandboxJob(argv: ["/bin/sh", "-c", script])))
        return try spawn([dir + "/job"], control: [], later: stop, after: "ready")
    }

    func testStopSendsSIGTERMToTheProgram() throws {
        let r = try stop("echo ready; sleep 30", HostFrame.stop(graceMilliseconds: 10_000).encoded())
        XCTAssertEqual(r.frames, [.ready, .exit(.signalled(15))])
        XCTAssertLessThan(r.seconds, 5)
    }

    func testStopReachesTheWholeProcessGroupAndATrapDecidesTheStatus() throws {
        // The background sleep gets SIGTERM too (else `wait` would not end before 30 s),
        // and the shell's trap makes it a normal exit.
        let r = try stop("trap 'exit 42' TERM; sleep 30 & echo ready; wait",
                         HostFrame.stop(graceMilliseconds: 10_000).encoded())
        XCTAssertEqual(r.frames, [.ready, .exit(.exited(42))])
        XCTAssertLessThan(r.seconds, 5)
    }

    func testStopKillsAProgramThatIgnoresSIGTERMAfterTheGracePeriod() throws {
        // An ignored signal stays ignored across execve, so sleep ignores SIGTERM as well.
        let r = try stop("trap '' TERM; echo ready; exec sleep 30", HostFrame.stop(graceMilliseconds: 700).encoded())
        XCTAssertEqual(r.frames, [.ready, .exit(.signalled(9))])
        XCTAssertGreaterThanOrEqual(r.seconds, 0.7)
        XCTAssertLessThan(r.seconds, 5)
    }

    func testStopWithoutAGraceUsesTheDefaultAndOnlyTheFirstStopCounts() throws {
        // An empty 'S' frame: 10 s. A second request does not restart the grace period.
        let empty = ControlFrame.encode(type: ControlFrame.stop, payload: [])
        XCTAssertEqual(HostFrame.defaultStopGraceMilliseconds, 10_000)
        let r = try stop("trap 'echo term; exit 3' TERM; echo ready; while :; do sleep 0.1; done",
                         empty + HostFrame.stop(graceMilliseconds: 0).encoded())
        XCTAssertEqual(r.frames, [.ready, .exit(.exited(3))])
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "ready\nterm\n")
    }

    func testStdinFramesReachTheProgram() throws {
        let r = try run(SandboxJob(argv: ["/bin/cat"], workdir: "/", hasStdin: true),
                        control: [.stdin(Array("hello ".utf8)), .stdin([]), .stdin(Array("world\n".utf8)), .stdinEOF])
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "hello world\n")
        XCTAssertEqual(r.stderr, [])
        XCTAssertEqual(r.frames, [.ready, .exit(.exited(0))])
        XCTAssertEqual(r.status, 0)
    }

    func testMegabytesOfStdinWithBackPressure() throws {
        var data = [UInt8](repeating: 0, count: 3 << 20)
        var x: UInt32 = 7
        for i in data.indices { x = x &* 1_664_525 &+ 1_013_904_223; data[i] = UInt8(truncatingIfNeeded: x >> 24) }
        // Odd frame sizes so frame headers fall everywhere across the init's 64 KiB reads,
        // plus an unknown frame type that must be skipped.
        var frames: [HostFrame] = []
        var i = 0, size = 1
        while i < data.count {
            let end = min(i + size, data.count)
            frames.append(.stdin(Array(data[i..<end])))
            i = end
            size = size * 7 % 100_003 + 1
        }
        var control = frames.flatMap { $0.encoded() }
        control = ControlFrame.encode(type: UInt8(ascii: "Z"), payload: [1, 2, 3]) + control + HostFrame.stdinEOF.encoded()
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try writeBytes(dir + "/job", try JobWriter.encode(SandboxJob(argv: ["/bin/cat"], hasStdin: true)))
        let r = try spawn([dir + "/job"], control: control)
        XCTAssertEqual(r.stdout.count, data.count)
        XCTAssertTrue(r.stdout == data)
        XCTAssertEqual(r.frames, [.ready, .exit(.exited(0))])
    }

    func testStdoutStderrAndExitCode() throws {
        let r = try run(SandboxJob(argv: ["/bin/sh", "-c", "echo out; echo err >&2; printf 'a\\0b'; exit 7"]))
        XCTAssertEqual(r.stdout, Array("out\na\u{0}b".utf8))
        XCTAssertEqual(String(decoding: r.stderr, as: UTF8.self), "err\n")
        XCTAssertEqual(r.frames, [.ready, .exit(.exited(7))])
    }

    func testSignalledProgram() throws {
        let r = try run(SandboxJob(argv: ["/bin/sh", "-c", "kill -KILL $$"]))
        XCTAssertEqual(r.frames, [.ready, .exit(.signalled(9))])
    }

    func testExecFailureIsAnFFrame() throws {
        let r = try run(SandboxJob(argv: ["/nonexistent/prog"]))
        XCTAssertEqual(r.frames, [.ready, .failure("execve /nonexistent/prog: No such file or directory")])
        let w = try run(SandboxJob(argv: ["/bin/true"], workdir: "/proc/self/nonexistent"))
        XCTAssertEqual(w.frames.count, 2)
        XCTAssertEqual(w.frames.last.map { if case .failure = $0 { return true } else { return false } }, true, "\(w.frames)")
    }

    func testEnvironmentAndWorkdirAreExact() throws {
        let r = try run(SandboxJob(argv: ["/usr/bin/env"], env: ["A=1", "B=two words", "C="], workdir: "/tmp"))
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "A=1\nB=two words\nC=\n")
        let p = try run(SandboxJob(argv: ["/bin/pwd"], workdir: "/usr/bin"))
        XCTAssertEqual(String(decoding: p.stdout, as: UTF8.self), "/usr/bin\n")
        // argv[0] is the path as given; the rest as given, empty strings included.
        let a = try run(SandboxJob(argv: ["/bin/sh", "-c", "echo \"$0|$1|$2\"", "x y", ""]))
        XCTAssertEqual(String(decoding: a.stdout, as: UTF8.self), "x y||\n")
    }

    func testWithoutStdinTheProgramReadsDevNull() throws {
        let r = try run(SandboxJob(argv: ["/bin/cat"]), control: [.stdin(Array("ignored".utf8))])
        XCTAssertEqual(r.stdout, [])
        XCTAssertEqual(r.frames, [.ready, .exit(.exited(0))])
    }

    func testControlInputEndingClosesStdin() throws {
        // No 'E' frame: the control input ends, so stdin must end too, or cat would hang.
        let r = try run(SandboxJob(argv: ["/bin/cat"], hasStdin: true), control: [.stdin(Array("x".utf8))])
        XCTAssertEqual(r.stdout, Array("x".utf8))
        XCTAssertEqual(r.frames, [.ready, .exit(.exited(0))])
    }

    func testBackgroundProcessDoesNotKeepTheRunAlive() throws {
        let r = try run(SandboxJob(argv: ["/bin/sh", "-c", "sleep 3 & echo started"]))
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "started\n")
        XCTAssertEqual(r.frames, [.ready, .exit(.exited(0))])
        XCTAssertLessThan(r.seconds, 2.5)
    }

    func testCParserReadsWhatJobWriterWrites() throws {
        let job = SandboxJob(argv: ["/usr/bin/prog", "ünï cödé", "", "--flag=a b"], env: ["PATH=/bin:/usr/bin", "E="],
                             workdir: "/work dir", uid: 1000, gid: 100, hasStdin: true, tty: true,
                             terminalRows: 40, terminalColumns: 120,
                             volumes: [.init(guestPath: "/data", readOnly: true), .init(guestPath: "/out/x", readOnly: false),
                                       .init(guestPath: "/live", readOnly: false, live: true)])
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        try writeBytes(dir + "/job", try JobWriter.encode(job))
        let r = try spawn(["--dump-job", dir + "/job"], control: [])
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), """
            flags=3 uid=1000 gid=100 rows=40 cols=120
            arg=/usr/bin/prog
            arg=ünï cödé
            arg=
            arg=--flag=a b
            env=PATH=/bin:/usr/bin
            env=E=
            workdir=/work dir
            volume=/data ro=1 live=0
            volume=/out/x ro=0 live=0
            volume=/live ro=0 live=1

            """)
    }

    func testCParserRejectsEveryTruncationAndTrailingBytes() throws {
        let bytes = try JobWriter.encode(SandboxJob(argv: ["/p", "arg"], env: ["A=b"], workdir: "/w",
                                                    volumes: [.init(guestPath: "/v", readOnly: true)]))
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        for cut in 0..<bytes.count {
            try writeBytes(dir + "/job", Array(bytes[0..<cut]))
            let r = try spawn(["--dump-job", dir + "/job"], control: [])
            XCTAssertEqual(r.status, 1 << 8, "cut \(cut)")
            XCTAssertTrue(String(decoding: r.stderr, as: UTF8.self).hasPrefix("svm-init: \(dir)/job"), "cut \(cut)")
        }
        try writeBytes(dir + "/job", bytes + [0])
        let t = try spawn(["--dump-job", dir + "/job"], control: [])
        XCTAssertEqual(String(decoding: t.stderr, as: UTF8.self), "svm-init: \(dir)/job: trailing bytes\n")
        // A huge count must not make the init allocate it.
        var huge = bytes
        huge[32..<36] = [0xff, 0xff, 0xff, 0x7f]
        try writeBytes(dir + "/job", huge)
        let h = try spawn(["--dump-job", dir + "/job"], control: [])
        XCTAssertEqual(String(decoding: h.stderr, as: UTF8.self), "svm-init: \(dir)/job: bad argv (argv[0] must be an absolute path)\n")
        // A bad job in run mode is reported as an 'F' frame.
        let f = try spawn([dir + "/job"], control: [])
        XCTAssertEqual(f.frames, [.ready, .failure("\(dir)/job: bad argv (argv[0] must be an absolute path)")])
    }

    /// svm-runtime exec through the real init: in a container job whose process waits on
    /// its stdin, exec'd processes run with their own streams, stdin, status and signals;
    /// a missing program, a malformed request and frames for unknown ids are answered or
    /// ignored without harming the container's process.
    func testExecRunsMoreProcessesBesideTheContainersProcess() throws {
        let dir = try makeTempDir()
        defer { removeTree(dir) }
        let job = SandboxJob(argv: ["/bin/sh", "-c", "echo ready; read x; echo main-$x"], env: ["PATH=/bin:/usr/bin"],
                             hasStdin: true, container: ContainerJob())
        try writeBytes(dir + "/job", try JobWriter.encode(job))
        let garbage = ControlFrame.encode(type: ControlFrame.execStart, payload: [1, 0, 0, 0, 0xff, 0xff])
        var control = HostFrame.start.encoded()
        control += HostFrame.execStdin(id: 5, Array("early, dropped".utf8)).encoded()
        control += HostFrame.execStart(ExecProcess(id: 5, argv: ["sh", "-c", "cat; echo err >&2; exit 7"],
                                                   env: ["PATH=/bin:/usr/bin"], cwd: "/tmp", hasStdin: true)).encoded()
        control += HostFrame.execStdin(id: 5, Array("da".utf8)).encoded() + HostFrame.execStdin(id: 5, Array("ta\n".utf8)).encoded()
        control += HostFrame.execStdinEOF(id: 5).encoded()
        control += HostFrame.execStart(ExecProcess(id: 6, argv: ["/nonexistent/prog"])).encoded()
        control += garbage
        control += HostFrame.execStart(ExecProcess(id: 8, argv: ["sleep", "30"], env: ["PATH=/bin:/usr/bin"])).encoded()
        control += HostFrame.execSignal(id: 8, 15).encoded() + HostFrame.execSignal(id: 99, 9).encoded()
        control += HostFrame.execStdinEOF(id: 42).encoded()
        let ended: ([GuestFrame]) -> Bool = { frames in
            let ids = frames.compactMap { f -> UInt32? in
                switch f { case let .execExit(id, _), let .execFailure(id, _): return id; default: return nil }
            }
            return Set(ids) == [1, 5, 6, 8]
        }
        let r = try spawn([dir + "/job"], control: control,
                          later: HostFrame.stdin(Array("go\n".utf8)).encoded() + HostFrame.stdinEOF.encoded(), framesDone: ended)
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "ready\nmain-go\n", "the container's process is unharmed")
        XCTAssertEqual(r.frames.first, .ready)
        XCTAssertEqual(r.frames.last, .exit(.exited(0)))
        func output(_ id: UInt32, _ stream: ExecStream) -> String {
            String(decoding: r.frames.flatMap { f -> [UInt8] in
                if case let .execOutput(i, s, b) = f, i == id, s == stream { return b }
                return []
            }, as: UTF8.self)
        }
        XCTAssertEqual(output(5, .stdout), "data\n")
        XCTAssertEqual(output(5, .stderr), "err\n")
        XCTAssertTrue(r.frames.contains(.execExit(id: 5, .exited(7))), "\(r.frames)")
        XCTAssertTrue(r.frames.contains(.execFailure(id: 6, "execve /nonexistent/prog: No such file or directory")), "\(r.frames)")
        XCTAssertTrue(r.frames.contains(.execExit(id: 8, .signalled(15))), "\(r.frames)")
        XCTAssertTrue(r.frames.contains { if case let .execFailure(1, m) = $0 { return m.hasPrefix("malformed exec request") } else { return false } },
                      "\(r.frames)")
        // Output of an exec comes before its end.
        let lastOut = r.frames.lastIndex { if case .execOutput(5, _, _) = $0 { return true } else { return false } }
        let exit = r.frames.firstIndex(of: .execExit(id: 5, .exited(7)))
        XCTAssertLessThan(lastOut ?? Int.max, exit ?? -1)
    }
}
