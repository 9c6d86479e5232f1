// The snapshot manifest (Sources/Snapshot): `svm restore` reads it from a directory anyone
// with write access to it could have edited.
import Snapshot

enum SnapshotManifestTarget {
    static let target = FuzzTarget(
        name: "snapshot-manifest",
        covers: "Snapshot.Manifest.parse (format line, version, checksum, entries): parse → encode → parse gives the same manifest; the body is also parsed re-sealed with its right checksum, so mutations reach the entry parser",
        seeds: {
            var m = Manifest()
            m.append("svm-version", "svm 0.2.0")
            m.append("memory-size", "536870912")
            m.append("disk", "/var/lib/disk.img 1048576 1796534257 42")
            m.append("disk", "/tmp/b c.img 4096 1 2")
            m.append("tap", "svmtap0 02:73:76:6d:00:01")
            return [m.encoded(), Array("svm-snapshot 1\n".utf8)]
        },
        run: { bytes in
            check(bytes)
            // The same bytes as a body, sealed as the writer would: the checksum no longer
            // stops the parser at the door.
            check(bytes + Array("checksum \(Checksum.of(bytes).hex)\n".utf8))
        })

    static func check(_ bytes: [UInt8]) {
        guard let manifest = try? Manifest.parse(bytes) else { return }
        let again = try? Manifest.parse(manifest.encoded())
        fuzzCheck(again == manifest, "a parsed manifest did not survive encode → parse")
    }
}
