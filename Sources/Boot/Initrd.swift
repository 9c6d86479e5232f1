/// Initrd placement: as high as allowed, so the kernel's decompression area and early
/// allocations below it stay free (what GRUB, QEMU and kvmtool do).
enum InitrdPlacement {
    /// Highest page-aligned address `a` with `a + size <= limit` and `a >= kernelEnd`
    /// (rounded up to a page). `limit` is exclusive.
    static func address(size: UInt64, kernelEnd: UInt64, limit: UInt64) throws(BootError) -> UInt64 {
        guard size > 0 else { throw .initrdEmpty }
        let top = alignDown(limit, to: BootLayout.pageSize)
        guard let floor = alignUp(kernelEnd, to: BootLayout.pageSize), floor <= top else {
            throw .initrdTooLarge(size: size, available: 0)
        }
        guard size <= top - floor else {
            throw .initrdTooLarge(size: size, available: top - floor)
        }
        return alignDown(top - size, to: BootLayout.pageSize)
    }
}
