import XCTest
import FoundationEssentials
import Runner
@testable import SVMCommand
import Machine

final class BootOptionsTests: XCTestCase {
    func testDefaults() throws {
        let o = try BootOptions.parse([])
        XCTAssertEqual(o.memory, 512 << 20)
        XCTAssertEqual(o.cpus, 1)
        XCTAssertNil(o.kernel)
        XCTAssertNil(o.timeout)
        XCTAssertFalse(o.prefault)
        XCTAssertTrue(try BootOptions.parse(["--prefault"]).prefault)
    }

    func testAllFlagsBothSpellings() throws {
        let o = try BootOptions.parse(["--kernel", "k", "--initrd=i", "--mem", "2G", "--cpus=2",
                                       "--cmdline", "quiet", "--timeout", "1.5"])
        XCTAssertEqual(o.kernel, "k")
        XCTAssertEqual(o.initrd, "i")
        XCTAssertEqual(o.memory, 2 << 30)
        XCTAssertEqual(o.cpus, 2)
        XCTAssertEqual(o.commandLine, "quiet")
        XCTAssertEqual(o.timeout, 1.5)
    }

    func testBadValuesAreUsageErrors() {
        for args in [["--mem", "lots"], ["--mem", "1M"], ["--cpus", "0"], ["--cpus", "\(MachineConfig.maximumCPUs + 1)"],
                     ["--cpus", "two"], ["--timeout", "-1"], ["--timeout", "nan"], ["--kernel"],
                     ["--bogus"], ["--firmware", "f", "--kernel", "k"], ["--mem", "5000K"]] {
            XCTAssertThrowsError(try BootOptions.parse(args), "\(args)")
        }
    }

    func testExitStatusesAreDistinct() {
        XCTAssertEqual(ExitCode.status(for: .reset), 0)
        XCTAssertEqual(ExitCode.status(for: .powerOff), 0)
        XCTAssertEqual(ExitCode.status(for: .panic("x")), 1)
        XCTAssertEqual(ExitCode.status(for: .crashed("x")), 1)
        XCTAssertEqual(ExitCode.status(for: .timedOut), 124)
        XCTAssertEqual(ExitCode.status(for: MachineExit.interrupted(signal: 15)), 143)
        XCTAssertEqual(ExitCode.status(for: .hostFailure("x")), 3)
    }

    func testDefaultGuestCacheDirectory() {
        XCTAssertEqual(DefaultGuest.cacheDirectory(environment: ["SVM_CACHE_DIR": "/c"]), "/c")
        XCTAssertEqual(DefaultGuest.cacheDirectory(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]), "/x/svm")
        XCTAssertEqual(DefaultGuest.cacheDirectory(environment: ["HOME": "/h"]), "/h/.cache/svm")
    }

    func testGuestCommandLinePutsUserPartLast() {
        let plain = GuestCommandLine.build(user: "  console=ttyS0 quiet ", emulatingHost: false)
        XCTAssertTrue(plain.hasPrefix("reboot=k panic=-1"))
        XCTAssertTrue(plain.hasSuffix(" console=ttyS0 quiet"))
        XCTAssertFalse(plain.contains("clearcpuid"))
        let emulating = GuestCommandLine.build(user: "", emulatingHost: true)
        XCTAssertTrue(emulating.contains("clearcpuid=smap,xsave"))
        XCTAssertTrue(emulating.contains("nopv"))
        XCTAssertTrue(emulating.contains("sysctl.net.ipv4.tcp_min_tso_segs=44"))
        XCTAssertFalse(plain.contains("tcp_min_tso_segs"))
    }
}

final class GuestCommandLineTests: XCTestCase {
    /// Linux 6.1 copies clearcpuid= into a 128-byte buffer: a longer list is cut silently.
    func testClearCPUIDListFitsTheKernelsBuffer() {
        XCTAssertLessThanOrEqual(GuestCommandLine.hiddenFeatures.utf8.count, 127)
        XCTAssertTrue(GuestCommandLine.hiddenFeatures.hasPrefix("smap,xsave,popcnt"))
    }
}

final class BootOptionsJSONTests: XCTestCase {
    /// config.json is written by hand (JSONText) and read by JSONDecoder: every field must
    /// survive, set or not. A field added to BootOptions but not to its controlValue fails here.
    func testConfigRoundTripsThroughJSONDecoder() throws {
        var full = try BootOptions.parse(["--kernel", "/k \"q\"", "--initrd", "i", "--cmdline", "console=ttyS0 a=\\b",
                                          "--mem", "2G", "--cpus", "2", "--timeout", "1.5", "--disk", "/d,ro",
                                          "--disk", "/e", "--net", "tap=t0,mac=52:54:00:12:34:56", "--net", "tap=t1",
                                          "--console", "virtio", "--prefault", "--name", "web", "-d",
                                          "--share", "/srv/a:b:data", "--share", "/ro:tag2,ro"])
        XCTAssertEqual(full.shares, [ShareOption(source: "/srv/a:b", tag: "data"), ShareOption(source: "/ro", tag: "tag2", readOnly: true)])
        full.help = true
        let firmwareOnly = try BootOptions.parse(["--firmware", "/fw"])
        for o in [BootOptions(), full, firmwareOnly] {
            let bytes = ManagedVMs.encode(o)
            XCTAssertEqual(bytes.last, 0x0A)
            let decoded = try JSONDecoder().decode(BootOptions.self, from: Data(bytes))
            XCTAssertEqual(decoded, o, String(decoding: bytes, as: UTF8.self))
            XCTAssertEqual(BootOptions(configJSON: bytes), o, String(decoding: bytes, as: UTF8.self))
            // And what Foundation's encoder writes (as an older svm did) reads back too.
            XCTAssertEqual(BootOptions(configJSON: Array(try JSONEncoder().encode(o))), o)
        }
    }

    func testDamagedConfigIsUnreadable() {
        for text in [#"[]"#, #"{"cpus":"2"}"#, #"{"memory":-1}"#, #"{"disks":[{"path":1,"readOnly":false}]}"#,
                     #"{"networks":[{"tapName":"t","mac":5}]}"#, #"{"prefault":1}"#, #"{"kernel":3}"#, "{"] {
            XCTAssertNil(BootOptions(configJSON: Array(text.utf8)), text)
        }
    }
}

final class ShareOptionTests: XCTestCase {
    func testBadSharesAreUsageErrors() {
        for (text, message) in [("/x", "expected HOST_DIR:TAG"), (":t", "needs a host directory"), ("/x:", "1 to 36 bytes"),
                                ("/x:" + String(repeating: "t", count: 37), "1 to 36 bytes"), ("/x:a b", "spaces"),
                                ("/x:t,rw", "unknown option 'rw'")] {
            XCTAssertThrowsError(try BootOptions.parse(["--share", text]), text) {
                XCTAssertTrue("\($0)".contains(message), "\(text): \($0)")
            }
        }
        XCTAssertThrowsError(try BootOptions.parse(["--share", "/a:t", "--share", "/b:t"])) {
            XCTAssertTrue("\($0)".contains("used twice"), "\($0)")
        }
    }
}
