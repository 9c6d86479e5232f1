import XCTest
@testable import Devices

final class ConsoleEventScannerTests: XCTestCase {
    private func feedBytewise(_ scanner: inout ConsoleEventScanner, _ text: String) -> [ConsoleEvent] {
        var events: [ConsoleEvent] = []
        for byte in text.utf8 { events += scanner.feed(CollectionOfOne(byte)) }
        return events
    }

    func testPanicLineSplitAcrossChunks() {
        var scanner = ConsoleEventScanner()
        let text = "[    2.345678] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n"
        var events: [ConsoleEvent] = []
        var rest = Substring(text)
        var size = 1
        while !rest.isEmpty {
            let chunk = rest.prefix(size)
            let before = events.count
            events += scanner.feed(Array(chunk.utf8))
            rest = rest.dropFirst(chunk.count)
            if !rest.isEmpty { XCTAssertEqual(events.count, before, "no event before the line ends") }
            size = size % 7 + 1
        }
        XCTAssertEqual(events, [.panic(reason: "VFS: Unable to mount root fs on unknown-block(0,0)")])
    }

    func testPanicReasonIsSanitisedAndCapped() {
        var scanner = ConsoleEventScanner()
        let long = String(repeating: "x", count: 500)
        let events = scanner.feed(Array("Kernel panic - not syncing:\t Attempted\u{7} to kill init!  \r\n".utf8)
                                  + Array("Kernel panic - not syncing: \(long)\n".utf8))
        XCTAssertEqual(events.count, 2)
        XCTAssertEqual(events.first, .panic(reason: "Attempted to kill init!"))
        XCTAssertEqual(events.last, .panic(reason: String(repeating: "x", count: 200)))
    }

    func testPanicEndMarkerIsNotASecondPanic() {
        var scanner = ConsoleEventScanner()
        let events = feedBytewise(&scanner, """
            [    1.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b
            [    1.1] CPU: 0 PID: 1 Comm: init Not tainted 6.1.0 #1
            [    1.2] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b ]---

            """)
        XCTAssertEqual(events, [.panic(reason: "Attempted to kill init! exitcode=0x0000000b")])

        var fresh = ConsoleEventScanner()
        XCTAssertEqual(fresh.feed(Array("---[ end Kernel panic - not syncing: Fatal exception ]---\n".utf8)),
                       [.panic(reason: "Fatal exception")], "the end marker alone still reports the panic")
    }

    func testPowerDownHaltRestart() {
        var scanner = ConsoleEventScanner()
        XCTAssertEqual(feedBytewise(&scanner, "[   10.0] reboot: Power down\r\n"), [.powerOff])
        XCTAssertEqual(scanner.feed(Array("reboot: System halted\nreboot: Restarting system\n".utf8)),
                       [.halted, .restarting])
    }

    func testNoEventForIncompleteText() {
        var scanner = ConsoleEventScanner()
        XCTAssertEqual(scanner.feed(Array("Kernel panic\n".utf8)), [])
        XCTAssertEqual(scanner.feed(Array("Kernel panic - not syncing\n".utf8)), [], "no colon: not the panic line")
        XCTAssertEqual(scanner.feed(Array("reboot: Power".utf8)), [])
        XCTAssertEqual(scanner.feed(Array(" down".utf8)), [], "not before the newline")
        XCTAssertEqual(scanner.feed(Array("\n".utf8)), [.powerOff])
        XCTAssertEqual(scanner.feed(Array("reboot: Power".utf8)), [])
        XCTAssertEqual(scanner.feed(Array("\n down\n".utf8)), [], "split by a newline is two lines")
    }

    func testFlushTreatsPendingTextAsALine() {
        var scanner = ConsoleEventScanner()
        XCTAssertEqual(scanner.feed(Array("reboot: System halted".utf8)), [])
        XCTAssertEqual(scanner.flush(), [.halted])
        XCTAssertEqual(scanner.flush(), [])
    }

    func testOverlongLineIsBoundedAndLaterLinesStillWork() {
        var scanner = ConsoleEventScanner(watches: [LineWatch("needle")])
        let junk = [UInt8](repeating: UInt8(ascii: "a"), count: 100_000)
        XCTAssertEqual(scanner.feed(junk + Array("needle reboot: Power down\n".utf8)), [],
                       "text past the line cap is not searched")
        let events = scanner.feed(Array(String(repeating: "b", count: 2000).utf8) + [10])
        XCTAssertEqual(events, [])
        XCTAssertEqual(scanner.feed(Array("needle here\n".utf8)), [.matched(needle: "needle", line: "needle here")])
        let long = scanner.feed(Array("needle".utf8) + [UInt8](repeating: 0x7A, count: 5000) + [10])
        guard case let .matched(_, line)? = long.first else { return XCTFail("no match: \(long)") }
        XCTAssertEqual(line.count, ConsoleEventScanner.maximumLineLength)
    }

    func testWatchesNeedAllTheirStrings() {
        var scanner = ConsoleEventScanner()
        scanner.watch(LineWatch(name: "init-segfault", allOf: ["segfault at", "init["]))
        scanner.watch(LineWatch("Attempted to kill init!"))
        XCTAssertEqual(scanner.feed(Array("sh[77]: segfault at 0 ip 0 sp 0 error 4\n".utf8)), [])
        XCTAssertEqual(scanner.feed(Array("init[1]: segfault at 8 ip 00401000\r\n".utf8)),
                       [.matched(needle: "init-segfault", line: "init[1]: segfault at 8 ip 00401000")])
        XCTAssertEqual(scanner.feed(Array("Kernel panic - not syncing: Attempted to kill init! exitcode=0xb\n".utf8)),
                       [.panic(reason: "Attempted to kill init! exitcode=0xb"),
                        .matched(needle: "Attempted to kill init!",
                                 line: "Kernel panic - not syncing: Attempted to kill init! exitcode=0xb")])
    }

    func testResetForgetsPanicAndPartialLine() {
        var scanner = ConsoleEventScanner()
        _ = scanner.feed(Array("Kernel panic - not syncing: one\nreboot: Power".utf8))
        scanner.reset()
        XCTAssertEqual(scanner.feed(Array(" down\n---[ end Kernel panic - not syncing: two ]---\n".utf8)),
                       [.panic(reason: "two")])
    }
}
