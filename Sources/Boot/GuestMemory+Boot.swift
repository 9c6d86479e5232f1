import Memory

/// GuestMemory accessors that report failures as BootError, so the loaders can use a
/// single typed error. The loaders check ranges before writing; these still go through
/// GuestMemory's bounds checks, never around them.
extension GuestMemory {
    func store(_ bytes: some Collection<UInt8>, at address: UInt64) throws(BootError) {
        do { try write(bytes, at: address) } catch { throw .guestMemory(error) }
    }

    func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(BootError) {
        do { try write(value, at: address) } catch { throw .guestMemory(error) }
    }

    func clear(at address: UInt64, count: UInt64) throws(BootError) {
        do { try zero(at: address, count: count) } catch { throw .guestMemory(error) }
    }

    /// End of the RAM region that starts at guest address 0 (below the MMIO hole): the
    /// kernel, its decompression area and the initrd must all fit below it.
    var lowRAMEnd: UInt64 {
        regions.first(where: { $0.guestAddress == 0 })?.end ?? 0
    }
}

/// Rounds up to a power-of-two alignment; nil on overflow or if `alignment` is not a
/// power of two (it may come from a file).
func alignUp(_ value: UInt64, to alignment: UInt64) -> UInt64? {
    guard alignment != 0, alignment & (alignment - 1) == 0 else { return nil }
    let mask = alignment - 1
    let (sum, overflow) = value.addingReportingOverflow(mask)
    return overflow ? nil : sum & ~mask
}

/// Rounds down to a power-of-two alignment (svm's own constants only).
func alignDown(_ value: UInt64, to alignment: UInt64) -> UInt64 {
    precondition(alignment != 0 && alignment & (alignment - 1) == 0)
    return value & ~(alignment - 1)
}
