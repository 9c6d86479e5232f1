import XCTest
@testable import SVMCommand

final class SizeParserTests: XCTestCase {
    func testSuffixes() {
        XCTAssertEqual(SizeParser.parse("512M"), 512 << 20)
        XCTAssertEqual(SizeParser.parse("2G"), 2 << 30)
        XCTAssertEqual(SizeParser.parse("2g"), 2 << 30)
        XCTAssertEqual(SizeParser.parse("65536K"), 64 << 20)
        XCTAssertEqual(SizeParser.parse("1T"), 1 << 40)
    }

    func testPlainNumberIsMiB() {
        XCTAssertEqual(SizeParser.parse("256"), 256 << 20)
    }

    func testRejectsMalformed() {
        for bad in ["", "M", "12X", "-5M", "1.5G", "0x10M", " 5M", "5 M", "5MB", "٣M"] {
            XCTAssertNil(SizeParser.parse(bad), bad)
        }
    }

    func testRejectsOverflow() {
        XCTAssertNil(SizeParser.parse("99999999999999999999"))
        XCTAssertNil(SizeParser.parse("18446744073709551615G"))
        XCTAssertNil(SizeParser.parse("17179869184G"))  // 2^34 GiB = 2^64 bytes
    }
}
