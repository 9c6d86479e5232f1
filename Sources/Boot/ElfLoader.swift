import Memory

/// PVH boot of an ELF vmlinux: segments at their physical addresses, an hvm_start_info,
/// and a jump to the PHYS32 entry in 32-bit protected mode with paging off.
enum ElfLoader {
    static func load(_ params: BootParameters, into memory: GuestMemory) throws(BootError) -> BootEntry {
        let image = try ElfImage(FileBytes(params.kernel))
        let ramEnd = memory.lowRAMEnd

        // Validate everything before writing anything.
        var kernelEnd = BootLayout.kernelLoad
        for s in image.segments {
            let (end, overflow) = s.address.addingReportingOverflow(s.memorySize)
            // Below 1 MiB is svm's boot data; above low RAM the 32-bit entry cannot reach.
            guard !overflow, s.address >= BootLayout.kernelLoad, end <= GuestMemory.mmioHoleStart else {
                throw .segmentOutsideRAM(address: s.address, size: s.memorySize)
            }
            guard end <= ramEnd else { throw .kernelTooLarge(end: end, ramEnd: ramEnd) }
            kernelEnd = max(kernelEnd, end)
        }
        let cmdline = try KernelCommandLine.bytes(params.commandLine, limit: KernelCommandLine.pvhLimit)
        var initrdPlace: (address: UInt64, size: UInt64)?
        if let initrd = params.initrd {
            // Low RAM ends at or below the MMIO hole, so this also keeps the initrd below 4 GiB.
            let size = initrd.count
            initrdPlace = (try InitrdPlacement.address(size: size, kernelEnd: kernelEnd, limit: ramEnd), size)
        }

        for s in image.segments {
            try params.kernel.copy(offset: s.fileOffset, length: s.fileSize, into: memory, at: s.address,
                                   what: "kernel")
            try memory.clear(at: s.address + s.fileSize, count: s.memorySize - s.fileSize)
        }
        if let place = initrdPlace, let initrd = params.initrd {
            try initrd.copy(offset: 0, length: initrd.count, into: memory, at: place.address, what: "initrd")
        }
        try memory.clear(at: BootLayout.commandLine, count: BootLayout.commandLineCapacity)
        try memory.store(cmdline, at: BootLayout.commandLine)
        let startInfo = try PVHStartInfo.write(initrd: initrdPlace, memoryMap: E820.map(for: memory.regions),
                                               into: memory)
        let mode = BootEntry.Mode.protected32
        let gdt = try GDT.write(for: mode, into: memory)
        return BootEntry(mode: mode, rip: UInt64(image.pvhEntry), rbx: startInfo,
                         rsp: BootLayout.stackPointer, gdtBase: gdt.base, gdtLimit: gdt.limit)
    }
}
