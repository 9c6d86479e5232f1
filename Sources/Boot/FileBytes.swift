/// Bounds-checked little-endian reads from an untrusted file (kernel image).
///
/// Offsets and lengths are UInt64 so values read from the file can be used as they are;
/// every accessor returns nil if any byte lies outside the file, the arithmetic overflows
/// or the file cannot be read, so callers turn a nil into a BootError instead of trapping.
struct FileBytes {
    let image: BootImage

    init(_ bytes: [UInt8]) { image = BootImage(bytes: bytes) }
    init(_ image: BootImage) { self.image = image }

    var count: UInt64 { image.count }

    /// True if `[offset, offset+length)` lies inside the file.
    func contains(_ offset: UInt64, length: UInt64) -> Bool {
        let (end, overflow) = offset.addingReportingOverflow(length)
        return !overflow && end <= count
    }

    func read<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, at offset: UInt64) -> T? {
        let n = MemoryLayout<T>.size
        var v: T = 0
        switch image.storage {
        case let .bytes(array):
            guard contains(offset, length: UInt64(n)) else { return nil }
            for i in 0..<n { v |= T(array[Int(offset) + i]) << (8 * i) }
        case .file:
            guard let bytes = image.bytes(at: offset, length: UInt64(n)) else { return nil }
            for i in 0..<n { v |= T(bytes[i]) << (8 * i) }
        }
        return v
    }

    func u8(_ offset: UInt64) -> UInt8? { read(UInt8.self, at: offset) }
    func u16(_ offset: UInt64) -> UInt16? { read(UInt16.self, at: offset) }
    func u32(_ offset: UInt64) -> UInt32? { read(UInt32.self, at: offset) }
    func u64(_ offset: UInt64) -> UInt64? { read(UInt64.self, at: offset) }

    func slice(_ offset: UInt64, length: UInt64) -> [UInt8]? {
        image.bytes(at: offset, length: length)
    }
}

/// Little-endian serialisation for the structures svm builds (zero page fields, PVH start
/// info, MP table), so their layout is spelled out field by field.
extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        for i in 0..<MemoryLayout<T>.size { append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }

    /// Overwrites `MemoryLayout<T>.size` bytes at `offset` (svm's own fixed offsets).
    mutating func storeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size {
            self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i))
        }
    }

    mutating func appendASCII(_ s: String, paddedTo width: Int) {
        var field = Array(s.utf8.prefix(width))
        field += repeatElement(UInt8(ascii: " "), count: width - field.count)
        append(contentsOf: field)
    }
}
