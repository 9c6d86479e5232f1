/// The snapshot's table of contents, a text file a person can read:
///
///     svm-snapshot 1
///     svm-version svm 0.2.0
///     memory-size 536870912
///     ...
///     checksum 0123456789abcdef
///
/// The first line names the format and its version; each line after it is a key, one
/// space and a value (no newlines in values); the last line is the checksum of every byte
/// before it. Keys may repeat (one `disk` line per disk); order is kept.
public struct Manifest: Equatable, Sendable {
    public static let magic = "svm-snapshot"
    public static let formatVersion = 1

    public var entries: [(key: String, value: String)]

    public init(entries: [(key: String, value: String)] = []) {
        self.entries = entries
    }

    public static func == (a: Manifest, b: Manifest) -> Bool {
        a.entries.map(\.key) == b.entries.map(\.key) && a.entries.map(\.value) == b.entries.map(\.value)
    }

    public mutating func append(_ key: String, _ value: String) {
        precondition(!key.isEmpty && !key.contains(" ") && !key.contains("\n") && !value.contains("\n"),
                     "manifest entry \(key)")
        entries.append((key, value))
    }

    /// The first value of `key`.
    public subscript(key: String) -> String? { entries.first { $0.key == key }?.value }

    public func values(_ key: String) -> [String] { entries.filter { $0.key == key }.map(\.value) }

    /// The value of `key`, which must be there.
    public func required(_ key: String) throws(SnapshotError) -> String {
        guard let v = self[key] else { throw .malformed("manifest has no '\(key)'") }
        return v
    }

    public func encoded() -> [UInt8] {
        var text = "\(Self.magic) \(Self.formatVersion)\n"
        for e in entries { text += "\(e.key) \(e.value)\n" }
        let body = Array(text.utf8)
        return body + Array("checksum \(Checksum.of(body).hex)\n".utf8)
    }

    /// Parses and checks a manifest: format line, version, checksum, then the entries.
    public static func parse(_ bytes: [UInt8]) throws(SnapshotError) -> Manifest {
        guard bytes.count <= 1 << 20 else { throw .malformed("manifest of \(bytes.count) bytes") }
        guard let text = String(validating: bytes, as: UTF8.self), text.hasSuffix("\n") else {
            throw .malformed("manifest is not UTF-8 text ending in a newline")
        }
        var lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let first = lines.first, first.hasPrefix("\(magic) ") else {
            throw .malformed("not an svm snapshot manifest (no '\(magic)' line)")
        }
        guard let version = Int(first.dropFirst(magic.count + 1)) else { throw .malformed("manifest format line '\(first)'") }
        guard version == formatVersion else { throw .formatVersion(found: version, expected: formatVersion) }
        guard let last = lines.last, last.hasPrefix("checksum "), lines.count >= 2 else {
            throw .malformed("manifest has no checksum line")
        }
        let bodyLength = bytes.count - (last.utf8.count + 1)
        guard Checksum.of(Array(bytes[..<bodyLength])).hex == String(last.dropFirst("checksum ".count)) else {
            throw .checksumMismatch(file: "manifest")
        }
        lines.removeFirst()
        lines.removeLast()
        var manifest = Manifest()
        for line in lines {
            guard let space = line.firstIndex(of: " "), space != line.startIndex else {
                throw .malformed("manifest line '\(line)'")
            }
            manifest.entries.append((String(line[..<space]), String(line[line.index(after: space)...])))
        }
        return manifest
    }
}
