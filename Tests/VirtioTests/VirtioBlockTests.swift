import Glibc
import Host
import Memory
import XCTest
@testable import Virtio

/// A temporary raw disk image, removed at deinit.
final class TempDisk {
    let path: String

    init(bytes: Int, fill: UInt8 = 0) {
        var template = Array("/tmp/svm-virtio-test-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(fd >= 0, "mkstemp failed")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let content = [UInt8](repeating: fill, count: bytes)
        _ = content.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    func contents(at offset: Int, count: Int) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var b = [UInt8](repeating: 0, count: count)
        _ = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        return b
    }

    deinit { unlink(path) }
}

final class VirtioBlockTests: XCTestCase {
    struct Result {
        var status: UInt8
        var usedLength: UInt32
        var data: [UInt8]
    }

    /// Sends one request the way Linux does: header, data, status in separate descriptors.
    func request(_ d: MMIODriver, type: UInt32, sector: UInt64, out: [UInt8] = [], inLength: Int = 0,
                 splitData: Bool = false) -> Result {
        let q = d.queues[0]
        var header = [UInt8](repeating: 0, count: 16)
        for i in 0..<4 { header[i] = UInt8(truncatingIfNeeded: type >> (8 * i)) }
        for i in 0..<8 { header[8 + i] = UInt8(truncatingIfNeeded: sector >> (8 * i)) }
        var chain = [q.buffer(header)]
        if !out.isEmpty {
            if splitData {
                let half = out.count / 2 + 7
                chain += [q.buffer(Array(out[..<half])), q.buffer(Array(out[half...]))]
            } else {
                chain.append(q.buffer(out))
            }
        }
        var input: [TestDriver.Buffer] = []
        if inLength > 0 {
            input = splitData ? [q.writableBuffer(inLength - 100), q.writableBuffer(100)] : [q.writableBuffer(inLength)]
        }
        let status = q.writableBuffer(1, fill: 0xff)
        let head = q.postChain(chain + input + [status])
        d.notify(0)
        let used = q.usedElement(q.usedIndex &- 1)
        XCTAssertEqual(used.id, UInt32(head))
        let data = input.flatMap { q.bytes(at: $0.address, count: Int($0.length)) }
        return Result(status: q.bytes(at: status.address, count: 1)[0], usedLength: used.length, data: data)
    }

    func start(_ disk: TempDisk, readOnly: Bool = false) throws -> (VirtioBlock, MMIODriver) {
        let blk = try VirtioBlock(path: disk.path, readOnly: readOnly, serial: "svm-test-serial")
        let d = try MMIODriver(device: blk)
        d.start(queueSize: 64)
        XCTAssertTrue(d.transport.isActive)
        return (blk, d)
    }

    func testWriteThenReadBack() throws {
        let disk = TempDisk(bytes: 64 * 512)
        let (_, d) = try start(disk)
        let pattern = (0..<1536).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        let w = request(d, type: BlockRequest.typeOut, sector: 5, out: pattern, splitData: true)
        XCTAssertEqual(w.status, BlockRequest.statusOK)
        XCTAssertEqual(w.usedLength, 1)
        XCTAssertEqual(disk.contents(at: 5 * 512, count: 1536), pattern)

        let r = request(d, type: BlockRequest.typeIn, sector: 5, inLength: 1536, splitData: true)
        XCTAssertEqual(r.status, BlockRequest.statusOK)
        XCTAssertEqual(r.usedLength, 1537)
        XCTAssertEqual(r.data, pattern)

        // The last sector of the disk is reachable.
        XCTAssertEqual(request(d, type: BlockRequest.typeIn, sector: 63, inLength: 512).status, BlockRequest.statusOK)
    }

    func testFlush() throws {
        let disk = TempDisk(bytes: 8 * 512)
        let (_, d) = try start(disk)
        let r = request(d, type: BlockRequest.typeFlush, sector: 0)
        XCTAssertEqual(r.status, BlockRequest.statusOK)
        XCTAssertEqual(r.usedLength, 1)
    }

    func testGetID() throws {
        let disk = TempDisk(bytes: 8 * 512)
        let (_, d) = try start(disk)
        let r = request(d, type: BlockRequest.typeGetID, sector: 0, inLength: 20)
        XCTAssertEqual(r.status, BlockRequest.statusOK)
        XCTAssertEqual(r.usedLength, 21)
        XCTAssertEqual(r.data, Array("svm-test-serial".utf8) + [0, 0, 0, 0, 0])
    }

    func testUnknownTypeIsUnsupported() throws {
        let disk = TempDisk(bytes: 8 * 512)
        let (_, d) = try start(disk)
        XCTAssertEqual(request(d, type: 11, sector: 0, inLength: 512).status, BlockRequest.statusUnsupported)
    }

    func testConfigSpaceAndFeatures() throws {
        let disk = TempDisk(bytes: 100 * 512)
        let (blk, d) = try start(disk)
        XCTAssertEqual(blk.capacity, 100)
        XCTAssertEqual(d.config(0, size: 8), 100)
        XCTAssertEqual(d.config(0, size: 4), 100)
        XCTAssertEqual(d.config(4, size: 4), 0)
        XCTAssertEqual(d.config(12, size: 4), UInt64(VirtioBlock.queueSize - 2), "seg_max")
        XCTAssertEqual(d.config(20, size: 4), 512, "blk_size")
        let f = blk.offeredFeatures
        XCTAssertNotEqual(f & VirtioFeature.version1, 0)
        XCTAssertNotEqual(f & VirtioBlock.featureFlush, 0)
        XCTAssertNotEqual(f & VirtioBlock.featureSegMax, 0)
        XCTAssertNotEqual(f & VirtioBlock.featureBlockSize, 0)
        XCTAssertEqual(f & VirtioBlock.featureReadOnly, 0)
    }

    func testReadOnlyDiskRefusesWritesAndOffersRO() throws {
        let disk = TempDisk(bytes: 8 * 512, fill: 0x33)
        let (blk, d) = try start(disk, readOnly: true)
        XCTAssertNotEqual(blk.offeredFeatures & VirtioBlock.featureReadOnly, 0)
        XCTAssertNotEqual(d.features & VirtioBlock.featureReadOnly, 0)
        let w = request(d, type: BlockRequest.typeOut, sector: 0, out: [UInt8](repeating: 1, count: 512))
        XCTAssertEqual(w.status, BlockRequest.statusIOError)
        XCTAssertEqual(disk.contents(at: 0, count: 512), [UInt8](repeating: 0x33, count: 512))
        let r = request(d, type: BlockRequest.typeIn, sector: 0, inLength: 512)
        XCTAssertEqual(r.status, BlockRequest.statusOK)
        XCTAssertEqual(r.data, [UInt8](repeating: 0x33, count: 512))
    }

    func testOutOfRangeAndMalformedRequestsFailWithIOError() throws {
        let disk = TempDisk(bytes: 16 * 512)
        let (_, d) = try start(disk)
        let sector = [UInt8](repeating: 9, count: 512)
        XCTAssertEqual(request(d, type: BlockRequest.typeIn, sector: 16, inLength: 512).status,
                       BlockRequest.statusIOError, "one past the end")
        XCTAssertEqual(request(d, type: BlockRequest.typeIn, sector: 15, inLength: 1024).status,
                       BlockRequest.statusIOError, "runs past the end")
        XCTAssertEqual(request(d, type: BlockRequest.typeOut, sector: 16, out: sector).status,
                       BlockRequest.statusIOError)
        XCTAssertEqual(request(d, type: BlockRequest.typeIn, sector: UInt64.max / 256, inLength: 512).status,
                       BlockRequest.statusIOError, "sector * 512 overflows")
        XCTAssertEqual(request(d, type: BlockRequest.typeIn, sector: UInt64.max, inLength: 512).status,
                       BlockRequest.statusIOError)
        XCTAssertEqual(request(d, type: BlockRequest.typeIn, sector: 0, inLength: 100).status,
                       BlockRequest.statusIOError, "not whole sectors")
        XCTAssertEqual(request(d, type: BlockRequest.typeOut, sector: 0, out: [1, 2, 3]).status,
                       BlockRequest.statusIOError)
        XCTAssertEqual(disk.contents(at: 0, count: 16 * 512), [UInt8](repeating: 0, count: 16 * 512),
                       "nothing was written by a failed request")
    }

    func testShortHeaderIsIOErrorAndMissingStatusDropsTheRequest() throws {
        let disk = TempDisk(bytes: 8 * 512)
        let (_, d) = try start(disk)
        let q = d.queues[0]
        let status = q.writableBuffer(1, fill: 0xff)
        q.postChain([q.buffer([0, 0, 0, 0, 0, 0, 0, 0]), status])
        d.notify(0)
        XCTAssertEqual(q.bytes(at: status.address, count: 1), [BlockRequest.statusIOError])
        XCTAssertEqual(q.usedElement(0).length, 1)

        // Only readable descriptors: nowhere to put a status.
        var header = [UInt8](repeating: 0, count: 16)
        header[0] = 1
        let head = q.postChain([q.buffer(header), q.buffer([UInt8](repeating: 1, count: 512))])
        d.notify(0)
        XCTAssertEqual(q.usedIndex, 2)
        XCTAssertEqual(q.usedElement(1).id, UInt32(head))
        XCTAssertEqual(q.usedElement(1).length, 0)
        XCTAssertEqual(disk.contents(at: 0, count: 512), [UInt8](repeating: 0, count: 512))

        // An empty chain (one zero-length descriptor) is dropped the same way.
        q.setDescriptor(10, address: 0x50_0000, length: 0, flags: 0)
        q.post(10)
        d.notify(0)
        XCTAssertEqual(q.usedElement(2).id, 10)
        XCTAssertEqual(q.usedElement(2).length, 0)
    }

    func testMalformedChainIsReturnedAndTheQueueGoesOn() throws {
        let disk = TempDisk(bytes: 8 * 512)
        let (_, d) = try start(disk)
        let q = d.queues[0]
        q.setDescriptor(20, address: 0x1_0000_0000, length: 16, flags: 0) // outside RAM
        q.post(20)
        XCTAssertEqual(request(d, type: BlockRequest.typeFlush, sector: 0).status, BlockRequest.statusOK)
        XCTAssertEqual(q.usedElement(0).id, 20)
        XCTAssertEqual(q.usedElement(0).length, 0)
        XCTAssertEqual(d.status & VirtioStatus.needsReset, 0)
    }

    func testBrokenAvailRingMarksTheDeviceNeedsReset() throws {
        let disk = TempDisk(bytes: 8 * 512)
        let (_, d) = try start(disk)
        d.queues[0].setAvailIndex(1000)
        d.notify(0)
        XCTAssertNotEqual(d.status & VirtioStatus.needsReset, 0)
        XCTAssertNotEqual(d.read(MMIODriver.Reg.interruptStatus) & VirtioInterruptBit.configChange, 0)
        XCTAssertEqual(d.queues[0].usedIndex, 0)
        // A reset and a fresh start recover.
        d.start(queueSize: 64)
        XCTAssertEqual(d.status & VirtioStatus.needsReset, 0)
        XCTAssertEqual(request(d, type: BlockRequest.typeFlush, sector: 0).status, BlockRequest.statusOK)
    }

    func testSecondReadWriteOpenIsRefusedAsInUse() throws {
        let disk = TempDisk(bytes: 8 * 512)
        let first = try VirtioBlock(path: disk.path, readOnly: false)
        XCTAssertThrowsError(try VirtioBlock(path: disk.path, readOnly: false)) { error in
            XCTAssertEqual(error as? DiskError, .inUse(path: disk.path))
            XCTAssertEqual("\(error)", "disk \(disk.path) is in use by another svm")
        }
        XCTAssertThrowsError(try VirtioBlock(path: disk.path, readOnly: true), "read-only against a writer")
        withExtendedLifetime(first) {}
    }

    func testReadOnlyOpensShareTheDisk() throws {
        let disk = TempDisk(bytes: 8 * 512)
        let a = try DiskImage(path: disk.path, readOnly: true)
        let b = try DiskImage(path: disk.path, readOnly: true)
        XCTAssertThrowsError(try DiskImage(path: disk.path, readOnly: false))
        withExtendedLifetime((a, b)) {}
    }

    func testTheLockIsReleasedWithTheDevice() throws {
        let disk = TempDisk(bytes: 8 * 512)
        do { _ = try DiskImage(path: disk.path, readOnly: false) }
        XCTAssertNoThrow(try DiskImage(path: disk.path, readOnly: false))
    }

    /// The storage's failures name the image and carry the errno; the guest sees IOERR.
    func testStorageFailuresNameTheImage() throws {
        let disk = TempDisk(bytes: 8 * 512, fill: 7)
        let image = try DiskImage(path: disk.path, readOnly: true)
        var buffer = [UInt8](repeating: 0, count: 1024)
        try buffer.withUnsafeMutableBytes { try image.read(into: $0, at: 3 * 512) }
        XCTAssertEqual(buffer, [UInt8](repeating: 7, count: 1024))
        XCTAssertEqual(truncate(disk.path, 4 * 512), 0)  // shrinks under the open image
        XCTAssertThrowsError(try buffer.withUnsafeMutableBytes { try image.read(into: $0, at: 3 * 512) }) { error in
            let e = error as? HostError
            XCTAssertEqual(e?.errno, EIO)
            XCTAssertTrue(e?.operation.hasPrefix("read \(disk.path) at byte 2048") ?? false, "\(error)")
        }
        XCTAssertThrowsError(try buffer.withUnsafeBytes { try image.write(from: $0, at: 0) }) { error in
            XCTAssertEqual(error as? HostError, HostError("write \(disk.path)", errno: EROFS))
        }
        XCTAssertNoThrow(try image.flush())
    }

    func testImageSizeMustBeWholeSectors() throws {
        let disk = TempDisk(bytes: 1000)
        XCTAssertThrowsError(try DiskImage(path: disk.path, readOnly: false)) { error in
            XCTAssertEqual(error as? DiskError, .sizeNotMultipleOfSector(path: disk.path, bytes: 1000))
        }
        XCTAssertThrowsError(try DiskImage(path: "/nonexistent/svm.img", readOnly: true)) { error in
            XCTAssertEqual(error as? DiskError, .openFailed(path: "/nonexistent/svm.img", HostError("open", errno: ENOENT)))
            XCTAssertEqual("\(error)", "cannot open disk /nonexistent/svm.img: open failed: No such file or directory (errno 2)")
        }
    }
}
