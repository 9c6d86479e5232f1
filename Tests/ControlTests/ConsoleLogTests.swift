import Glibc
import Host
import Synchronization
import XCTest
@testable import Control

final class ConsoleLogTests: XCTestCase {
    func testTheLogStaysBoundedAndKeepsTheNewest() throws {
        let path = try temporaryDirectory(self) + "/console.log"
        let log = try ConsoleLog(path: path, limit: 1000)
        var written: [UInt8] = []
        for i in 0..<600 {
            let line = Array("line \(i)\n".utf8)
            written += line
            log.append(line)
        }
        XCTAssertGreaterThan(written.count, 3000)
        let kept = ConsoleLogReader(path: path).all()
        XCTAssertLessThanOrEqual(kept.count, 2000)
        XCTAssertGreaterThan(kept.count, 1000)
        XCTAssertEqual(Array(written.suffix(kept.count)), kept, "the kept bytes are not the newest, in order")
    }

    func testTailAcrossTheRotation() throws {
        let path = try temporaryDirectory(self) + "/console.log"
        let log = try ConsoleLog(path: path, limit: 64)
        for i in 0..<20 { log.append(Array("l\(i)\n".utf8)) }
        let reader = ConsoleLogReader(path: path)
        XCTAssertEqual(String(decoding: reader.tail(lines: 3), as: UTF8.self), "l17\nl18\nl19\n")
        XCTAssertEqual(ConsoleLogReader.lastLines(Array("a\nb".utf8), 1), Array("b".utf8))
        XCTAssertEqual(ConsoleLogReader.lastLines(Array("a\nb\n".utf8), 5), Array("a\nb\n".utf8))
        XCTAssertEqual(ConsoleLogReader.lastLines(Array("a\nb\n".utf8), 0), [])
    }

    func testFollowSeesNewBytesAcrossRotationsWithoutLossOrRepeats() throws {
        let path = try temporaryDirectory(self) + "/console.log"
        let log = try ConsoleLog(path: path, limit: 100)
        log.append(Array("before\n".utf8))
        let reader = ConsoleLogReader(path: path)
        let (shown, offset) = reader.snapshot()
        XCTAssertEqual(shown, Array("before\n".utf8))
        let done = Atomic<Bool>(false)
        let writer = HostThread(name: "writer") {
            for i in 0..<200 {
                log.append(Array("w\(i)\n".utf8))
                if i % 10 == 0 { usleep(1000) }
            }
            done.store(true, ordering: .releasing)
        }
        try writer.start()
        var followed: [UInt8] = []
        reader.follow(from: offset, output: { followed += $0; return true },
                      alive: { !done.load(ordering: .acquiring) }, interval: 0.001)
        writer.join()
        let expected = (0..<200).flatMap { Array("w\($0)\n".utf8) }
        XCTAssertEqual(String(decoding: followed, as: UTF8.self), String(decoding: expected, as: UTF8.self))
    }
}
