import Memory

/// Linux boot protocol, 64-bit entry: the protected-mode part of a bzImage at 1 MiB, a zero
/// page describing everything, identity page tables, and a jump to load address + 0x200.
enum BzImageLoader {
    /// The 64-bit entry point is 0x200 bytes into the protected-mode kernel (boot.rst).
    static let entryOffset: UInt64 = 0x200

    static func load(_ params: BootParameters, into memory: GuestMemory) throws(BootError) -> BootEntry {
        let file = FileBytes(params.kernel)
        let header = try SetupHeader(file)
        let load = BootLayout.kernelLoad
        let ramEnd = memory.lowRAMEnd

        // Validate everything before writing anything, so a bad input leaves RAM untouched.
        let kernelEnd = try footprintEnd(header, kernelSize: file.count - header.kernelOffset, load: load)
        guard kernelEnd <= ramEnd else { throw .kernelTooLarge(end: kernelEnd, ramEnd: ramEnd) }
        let cmdline = try KernelCommandLine.bytes(params.commandLine, limit: Int(clamping: header.cmdlineSize))
        var initrdAddress: UInt64?
        if let initrd = params.initrd {
            // initrd_addr_max is the highest byte the initrd may occupy, hence the + 1.
            let limit = min(UInt64(header.initrdAddrMax) + 1, ramEnd)
            initrdAddress = try InitrdPlacement.address(size: initrd.count, kernelEnd: kernelEnd, limit: limit)
        }

        var zeroPage = [UInt8](repeating: 0, count: Int(BootLayout.zeroPageSize))
        // Copy only the setup header into a clean page (boot.rst), so fields the kernel
        // treats as "set by the loader" start at 0. Anything the jump byte claims beyond
        // the header area of struct boot_params is not header and is left out.
        let headerEnd = Int(min(header.end, ZeroPage.setupHeaderLimit))
        let headerStart = Int(ZeroPage.setupHeader)
        guard let headerBytes = file.slice(UInt64(headerStart), length: UInt64(headerEnd - headerStart)) else {
            throw .kernelTruncated(what: "bzImage setup header", needed: UInt64(headerEnd), size: file.count)
        }
        zeroPage.replaceSubrange(headerStart..<headerEnd, with: headerBytes)
        zeroPage.storeLE(ZeroPage.normalVideoMode, at: Int(ZeroPage.vidMode))
        zeroPage[Int(ZeroPage.typeOfLoader)] = ZeroPage.undefinedLoader
        zeroPage[Int(ZeroPage.loadflags)] |= ZeroPage.canUseHeap
        zeroPage.storeLE(ZeroPage.heapEnd, at: Int(ZeroPage.heapEndPtr))
        zeroPage.storeLE(UInt32(BootLayout.commandLine), at: Int(ZeroPage.cmdLinePtr))
        // Fields the loader owns start at 0 whatever the file says: a corrupt file must not
        // hand the kernel a setup_data pointer or a ramdisk that is not there.
        zeroPage.storeLE(UInt64(0), at: Int(ZeroPage.setupData))
        zeroPage.storeLE(UInt32(0), at: Int(ZeroPage.hardwareSubarch))
        zeroPage.storeLE(UInt64(0), at: Int(ZeroPage.hardwareSubarch) + 4)
        zeroPage.storeLE(UInt32(0), at: Int(ZeroPage.ramdiskImage))
        zeroPage.storeLE(UInt32(0), at: Int(ZeroPage.ramdiskSize))
        if let address = initrdAddress, let initrd = params.initrd {
            // Both are below low RAM's end (< 4 GiB), so they fit the 32-bit fields.
            zeroPage.storeLE(UInt32(truncatingIfNeeded: address), at: Int(ZeroPage.ramdiskImage))
            zeroPage.storeLE(UInt32(truncatingIfNeeded: initrd.count), at: Int(ZeroPage.ramdiskSize))
        }
        let e820 = E820.map(for: memory.regions)
        guard e820.count <= ZeroPage.e820MaxEntries else {
            throw .memoryMapTooLarge(entries: e820.count, maximum: ZeroPage.e820MaxEntries)
        }
        zeroPage[Int(ZeroPage.e820Entries)] = UInt8(e820.count)
        let table = E820.zeroPageBytes(e820)
        zeroPage.replaceSubrange(Int(ZeroPage.e820Table)..<Int(ZeroPage.e820Table) + table.count, with: table)

        try memory.store(zeroPage, at: BootLayout.zeroPage)
        try memory.clear(at: BootLayout.commandLine, count: BootLayout.commandLineCapacity)
        try memory.store(cmdline, at: BootLayout.commandLine)
        try params.kernel.copy(offset: header.kernelOffset, length: file.count - header.kernelOffset,
                               into: memory, at: load, what: "kernel")
        if let address = initrdAddress, let initrd = params.initrd {
            try initrd.copy(offset: 0, length: initrd.count, into: memory, at: address, what: "initrd")
        }
        let pml4 = try PageTables.write(into: memory)
        let mode = BootEntry.Mode.long64(pml4: pml4)
        let gdt = try GDT.write(for: mode, into: memory)
        return BootEntry(mode: mode, rip: load + entryOffset, rsi: BootLayout.zeroPage,
                         rsp: BootLayout.stackPointer, gdtBase: gdt.base, gdtLimit: gdt.limit)
    }

    /// End of the memory the kernel needs: the loaded image itself, and init_size bytes
    /// from where the decompressor will run (SetupHeader.runtimeStart). The initrd must
    /// go above this or the decompressor overwrites it.
    static func footprintEnd(_ header: SetupHeader, kernelSize: UInt64, load: UInt64) throws(BootError) -> UInt64 {
        let (imageEnd, o1) = load.addingReportingOverflow(kernelSize)
        guard !o1, let start = header.runtimeStart(loadAddress: load) else {
            throw .invalidSetupHeader("kernel size or alignment overflows the address space")
        }
        let (initEnd, o2) = start.addingReportingOverflow(UInt64(header.initSize))
        guard !o2 else {
            throw .invalidSetupHeader("pref_address \(hex(header.prefAddress)) + init_size overflows")
        }
        return max(imageEnd, initEnd)
    }
}
