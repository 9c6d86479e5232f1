import XCTest
@testable import Host

final class ConsoleEscapeTests: XCTestCase {
    func testPlainBytesPassThrough() {
        var e = ConsoleEscape()
        XCTAssertEqual(e.feed(Array("ls\r".utf8)), .forward(Array("ls\r".utf8)))
    }

    func testCtrlAXQuitsAfterForwardingWhatCameBefore() {
        var e = ConsoleEscape()
        XCTAssertEqual(e.feed([0x61, 0x01, 0x78, 0x62]), .quit(forwardFirst: [0x61]))
    }

    func testEscapeSplitAcrossReads() {
        var e = ConsoleEscape()
        XCTAssertEqual(e.feed([0x01]), .forward([]))
        XCTAssertEqual(e.feed([0x78]), .quit(forwardFirst: []))
    }

    func testDoubleCtrlASendsOne() {
        var e = ConsoleEscape()
        XCTAssertEqual(e.feed([0x01, 0x01, 0x78]), .forward([0x01, 0x78]))
    }

    func testCtrlAThenOtherKeySendsBoth() {
        var e = ConsoleEscape()
        XCTAssertEqual(e.feed([0x01, 0x63]), .forward([0x01, 0x63]))
    }
}
