/// One virtio-blk request (virtio 1.x §5.2.6): a 16-byte header (type u32, reserved u32,
/// sector u64) in the device-readable part, data, and a final 1-byte status that is the
/// last byte of the device-writable part.
public enum BlockRequest {
    public static let sectorSize = 512
    public static let headerSize = 16
    /// GET_ID answers with up to 20 bytes of serial, NUL-padded.
    public static let idLength = 20

    // Request types.
    public static let typeIn: UInt32 = 0
    public static let typeOut: UInt32 = 1
    public static let typeFlush: UInt32 = 4
    public static let typeGetID: UInt32 = 8

    // Status values.
    public static let statusOK: UInt8 = 0
    public static let statusIOError: UInt8 = 1
    public static let statusUnsupported: UInt8 = 2

    /// Carries out the request in `chain` against `storage` and returns the used length
    /// (bytes written into the chain, status byte included).
    ///
    /// Defined outcomes for bad requests: no writable byte for the status → dropped, used
    /// length 0 (there is nowhere to report); short header, data not a whole number of
    /// sectors, a range past the end (or overflowing), a write to a read-only disk or a
    /// host I/O failure → IOERR; an unknown type → UNSUPP.
    public static func process(_ chain: DescriptorChain, storage: any BlockStorage, serial: [UInt8]) -> UInt32 {
        let writable = chain.writableLength
        guard writable >= 1 else { return 0 }
        let statusOffset = writable - 1

        func finish(_ status: UInt8, dataWritten: Int = 0) -> UInt32 {
            guard (try? chain.write(CollectionOfOne(status), at: statusOffset)) == 1 else { return 0 }
            return UInt32(dataWritten + 1)
        }

        var header = [UInt8](repeating: 0, count: headerSize)
        let got = header.withUnsafeMutableBytes { (try? chain.read(into: $0, offset: 0)) ?? 0 }
        guard got == headerSize else { return finish(statusIOError) }
        let type = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) }
        let sector = header.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }

        switch type {
        case typeIn:
            let length = statusOffset
            guard let offset = byteRange(sector: sector, length: length, storage: storage) else {
                return finish(statusIOError)
            }
            do {
                _ = try chain.withWritablePieces(offset: 0, count: length) { piece, done in
                    try storage.read(into: piece, at: offset + UInt64(done))
                }
            } catch {
                return finish(statusIOError)
            }
            return finish(statusOK, dataWritten: length)

        case typeOut:
            let length = chain.readableLength - headerSize
            guard !storage.isReadOnly,
                  let offset = byteRange(sector: sector, length: length, storage: storage) else {
                return finish(statusIOError)
            }
            do {
                _ = try chain.withReadablePieces(offset: headerSize, count: length) { piece, done in
                    try storage.write(from: piece, at: offset + UInt64(done))
                }
            } catch {
                return finish(statusIOError)
            }
            return finish(statusOK)

        case typeFlush:
            do {
                try storage.flush()
            } catch {
                return finish(statusIOError)
            }
            return finish(statusOK)

        case typeGetID:
            var id = Array(serial.prefix(idLength))
            id += [UInt8](repeating: 0, count: idLength - id.count)
            let n = min(idLength, statusOffset)
            guard (try? chain.write(id.prefix(n), at: 0)) == n else { return finish(statusIOError) }
            return finish(statusOK, dataWritten: n)

        default:
            return finish(statusUnsupported)
        }
    }

    /// The byte offset of `length` bytes at `sector`, if `length` is whole sectors and the
    /// range lies inside the disk (all arithmetic overflow-checked: the sector is the
    /// guest's).
    static func byteRange(sector: UInt64, length: Int, storage: any BlockStorage) -> UInt64? {
        guard length >= 0, length % sectorSize == 0 else { return nil }
        let (offset, overflow) = sector.multipliedReportingOverflow(by: UInt64(sectorSize))
        guard !overflow, offset <= storage.byteCount,
              UInt64(length) <= storage.byteCount - offset else { return nil }
        return offset
    }
}
