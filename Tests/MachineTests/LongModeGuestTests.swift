import Glibc
import XCTest
import KVM
@testable import Machine

/// firmware/tiny/long-mode.S, assembled here with gcc: long mode set up by the guest,
/// int3 at CPL 0, MMIO exits from CPL 3, return to CPL 0 by #UD, reset.
final class LongModeGuestTests: XCTestCase {
    static var packageRoot: String {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }

    static func assemble(_ name: String) throws -> [UInt8] {
        let out = "/tmp/svm-\(name)-\(getpid()).bin"
        defer { unlink(out) }
        let args = ["gcc", "-nostdlib", "-static", "-Wl,--oformat=binary", "-Wl,-Ttext=0x8000",
                    "-Wl,-e,start", "-Wl,--build-id=none", "-o", out,
                    Self.packageRoot + "/firmware/tiny/\(name).S"]
        let argv = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        XCTAssertEqual(posix_spawnp(&pid, "gcc", nil, nil, argv, environ), 0, "gcc is needed to assemble tiny guests")
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        XCTAssertEqual(status, 0, "gcc failed on \(name).S")
        let fd = open(out, O_RDONLY)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 1 << 16)
        let n = read(fd, &bytes, bytes.count)
        XCTAssertGreaterThan(n, 16)
        return Array(bytes[0..<max(n, 0)])
    }

    func testLongModeInt3UserModeMMIOAndReset() throws {
        var image = try Self.assemble("long-mode")
        let exits: UInt64 = 1000
        withUnsafeBytes(of: exits.littleEndian) { image.replaceSubrange(8..<16, with: $0) }
        let r = try TinyGuestTests.runGuest(image)
        XCTAssertEqual(r.exit, .reset)
        XCTAssertEqual(r.output, "BLU")
        // KVM's emulator on such hosts cannot run int3 at CPL 0: svm completed it.
        if KVMSystem.hostEmulatesGuestKernel { XCTAssertGreaterThanOrEqual(r.fixups, 1) }
        XCTAssertGreaterThanOrEqual(r.mmioExits, exits)
    }
}
