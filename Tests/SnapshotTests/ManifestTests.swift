import Testing
@testable import Snapshot

@Suite struct ManifestTests {
    @Test func roundTrip() throws {
        var m = Manifest()
        m.append("svm-version", "svm 0.2.0")
        m.append("disk", "0 /tmp/a b.img 1048576 abc")
        m.append("disk", "1 /tmp/c.img 2048 def")
        let parsed = try Manifest.parse(m.encoded())
        #expect(parsed == m)
        #expect(parsed["svm-version"] == "svm 0.2.0")
        #expect(parsed.values("disk").count == 2)
    }
}
