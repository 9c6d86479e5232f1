import Snapshot

/// Saved state of the PC's port devices. Host-side counters (bytes output, drops) are not
/// guest state and start again from zero.

extension Serial16550: Snapshottable {
    public func saveState(to w: inout StateWriter) {
        state.withLock { s in
            for r in [s.ier, s.lcr, s.mcr, s.scr, s.dll, s.dlm, s.lineErrors, s.msrDelta] { w.put(r) }
            w.put(s.fifoEnabled)
            w.put(s.thrInterrupt)
            w.put(s.irqLevel)
            w.put(bytes: s.loopFIFO.contents)
            w.put(bytes: s.input.contents)
        }
    }

    public func restoreState(from r: inout StateReader) throws(SnapshotError) {
        var s = state.withLock { $0 }
        s.ier = try r.get(UInt8.self, "IER")
        s.lcr = try r.get(UInt8.self, "LCR")
        s.mcr = try r.get(UInt8.self, "MCR")
        s.scr = try r.get(UInt8.self, "SCR")
        s.dll = try r.get(UInt8.self, "DLL")
        s.dlm = try r.get(UInt8.self, "DLM")
        s.lineErrors = try r.get(UInt8.self, "LSR errors")
        s.msrDelta = try r.get(UInt8.self, "MSR deltas")
        s.fifoEnabled = try r.getBool("FIFO enable")
        s.thrInterrupt = try r.getBool("THRE interrupt")
        let level = try r.getBool("interrupt level")
        let loop = try r.getBytes("loopback FIFO", limit: Serial16550.fifoDepth)
        let input = try r.getBytes("input backlog", limit: s.input.capacity)
        s.loopFIFO.removeAll()
        _ = s.loopFIFO.push(contentsOf: loop)
        s.input.removeAll()
        _ = s.input.push(contentsOf: input)
        s.irqLevel = level
        state.withLock { $0 = s }
        // A fresh VM's line is low: raise it again if it was high at the save.
        if level { interrupt(true) }
    }
}

extension I8042: Snapshottable {
    public func saveState(to w: inout StateWriter) {
        state.withLock { s in
            w.put(s.commandByte)
            w.put(s.outputBuffer != nil)
            w.put(s.outputBuffer ?? 0)
            w.put(s.awaitingData != nil)
            w.put(s.awaitingData ?? 0)
            w.put(s.lastWriteWasCommand)
            w.put(s.outputPort)
        }
    }

    public func restoreState(from r: inout StateReader) throws(SnapshotError) {
        var s = State()
        s.commandByte = try r.get(UInt8.self, "command byte")
        let hasOutput = try r.getBool("output full")
        let output = try r.get(UInt8.self, "output buffer")
        s.outputBuffer = hasOutput ? output : nil
        let awaiting = try r.getBool("awaiting data")
        let command = try r.get(UInt8.self, "pending command")
        s.awaitingData = awaiting ? command : nil
        s.lastWriteWasCommand = try r.getBool("last write")
        s.outputPort = try r.get(UInt8.self, "output port")
        state.withLock { $0 = s }
    }
}

extension CMOS: Snapshottable {
    /// The index register and the 128 bytes of CMOS RAM. The clock registers are read from
    /// the host's clock whenever the guest asks, so a restored guest reads the time of the
    /// restore, as a real machine that was suspended would.
    public func saveState(to w: inout StateWriter) {
        state.withLock { s in
            w.put(s.index)
            w.put(bytes: s.ram)
        }
    }

    public func restoreState(from r: inout StateReader) throws(SnapshotError) {
        let index = try r.get(UInt8.self, "index")
        let ram = try r.getBytes("RAM", limit: 128)
        guard ram.count == 128 else { throw .malformed("CMOS RAM of \(ram.count) bytes") }
        state.withLock { s in
            s.index = index
            s.ram = ram
            s.sample = nil
        }
    }
}
