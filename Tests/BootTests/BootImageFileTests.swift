import Glibc
import XCTest
@testable import Boot
import Host
import Memory

/// svm loads kernels and initrds from open files with pread (BootImage's file form). The
/// result must be byte for byte what loading the same bytes from memory gives, and a file
/// that changes under svm must fail with a read error, not load garbage or trap.
final class BootImageFileTests: XCTestCase {
    private var paths: [String] = []

    override func tearDown() {
        for p in paths { unlink(p) }
        paths = []
    }

    /// Writes `bytes` to a temporary file and opens it the way svm does.
    private func fileImage(_ bytes: [UInt8]) throws -> (BootImage, path: String) {
        var template = Array("/tmp/svm-bootimage-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        paths.append(path)
        XCTAssertEqual(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }, bytes.count)
        return (BootImage(fileDescriptor: fd, size: UInt64(bytes.count), path: path), path)
    }

    private func guestRAM(_ mem: GuestMemory) throws -> [UInt8] {
        try mem.readBytes(at: 0, count: Int(mem.size))
    }

    func testFileAndBytesLoadIdenticallyOnBothEntryPaths() throws {
        let initrd = (0..<(1 << 20) + 123).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for kernel in [ElfFixture().bytes(), BzImageFixture().bytes()] {
            let fromBytes = try GuestMemory(size: 64 << 20)
            let entryA = try loadLinux(params(kernel, initrd: initrd), into: fromBytes)

            let fromFile = try GuestMemory(size: 64 << 20)
            let (k, _) = try fileImage(kernel)
            let (i, _) = try fileImage(initrd)
            XCTAssertEqual(try detectKernelFormat(k), try detectKernelFormat(kernel))
            let entryB = try loadLinux(BootParameters(kernel: k, initrd: i, commandLine: "console=ttyS0", cpuCount: 1),
                                       into: fromFile)
            XCTAssertEqual(entryA, entryB)
            XCTAssertTrue(try guestRAM(fromBytes) == guestRAM(fromFile), "guest RAM differs between file and bytes")
        }
    }

    func testFileThatShrinksAfterOpenFailsWithReadError() throws {
        let kernel = BzImageFixture().bytes()
        let (k, path) = try fileImage(kernel)
        XCTAssertEqual(try detectKernelFormat(k), .bzImage)
        // Keep the setup header, cut the kernel body's last byte: svm checked the old size at open.
        XCTAssertEqual(truncate(path, off_t(kernel.count - 1)), 0)
        let mem = try GuestMemory(size: 64 << 20)
        let error = assertBootError { () throws(BootError) in
            try loadLinux(BootParameters(kernel: k, initrd: nil, commandLine: "", cpuCount: 1), into: mem)
        }
        guard case let .readFailed(what, hostError)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertEqual(what, "kernel")
        XCTAssertEqual(hostError.errno, EIO)
        // The message names the file, why the read came up short and the errno text.
        let message = error!.description
        XCTAssertTrue(message.hasPrefix("kernel: read \(path) "), message)
        XCTAssertTrue(message.contains("changed while svm read it"), message)
        XCTAssertTrue(message.contains(String(cString: strerror(EIO))), message)
    }

    func testInitrdThatShrinksFailsBeforeTheKernelRuns() throws {
        let (i, path) = try fileImage([UInt8](repeating: 1, count: 64 << 10))
        XCTAssertEqual(truncate(path, 10), 0)
        let mem = try GuestMemory(size: 64 << 20)
        let error = assertBootError { () throws(BootError) in
            try loadLinux(BootParameters(kernel: BootImage(bytes: BzImageFixture().bytes()), initrd: i,
                                         commandLine: "", cpuCount: 1), into: mem)
        }
        guard case let .readFailed("initrd", hostError)? = error, hostError.errno == EIO else {
            return XCTFail("got \(String(describing: error))")
        }
        XCTAssertTrue(hostError.operation.hasPrefix("read \(path)"), hostError.operation)
    }
}
