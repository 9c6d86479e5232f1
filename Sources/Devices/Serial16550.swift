import Synchronization

/// A 16550A UART (8 registers at a base port, e.g. COM1 at 0x3F8 on IRQ 4), as Linux's 8250
/// driver expects it: detected as a 16550A with a 16-byte FIFO, interrupt-driven RX and TX.
///
/// Model:
/// - TX is instantaneous: a THR write hands the byte to `output` and the transmitter is empty
///   again at once (LSR.THRE and LSR.TEMT are always set). Each write re-arms the THRE
///   interrupt, as a real UART does when its holding register drains.
/// - RX: host bytes from `receive` wait in a backlog of `inputCapacity` bytes (the "wire",
///   with perfect flow control) and are read by the guest through RBR one at a time, so
///   LSR.DR stays set while any are left. Bytes beyond the cap are dropped, counted in
///   `inputDropped` and reported to the guest as an overrun (LSR.OE). A FIFO reset (FCR bit 1)
///   does not discard host input still on the wire.
/// - Loopback (MCR bit 4): THR bytes go into a 16-byte receive FIFO (1 byte with FIFOs off)
///   instead of `output`; MSR reflects DTR/RTS/OUT1/OUT2 as DSR/CTS/RI/DCD. Host input is
///   held back while looping. Outside loopback the modem inputs read as a connected peer
///   (DCD, DSR and CTS set).
/// - The interrupt line is the pending-interrupt output gated by MCR.OUT2 as on a PC (and
///   off in loopback, where OUT2 is forced inactive). RX data interrupts are raised as soon
///   as any byte is readable (there is no character timer, so the trigger level is ignored).
///
/// Threading: every register access and `receive` runs under one internal lock, so the UART
/// can be driven from several vCPU threads and a host input thread at once.
/// - `interrupt(level)` is called only when the line level changes, WITH the lock held, so
///   the sequence of levels it sees is exactly the sequence of device states (calling it
///   after unlocking could reorder a raise and a lower from two threads and lose an edge).
///   It must therefore be quick and must not call back into this UART.
/// - `output` is called WITHOUT the lock, after the register write that produced the byte,
///   so it may block (e.g. on a full stdout pipe) without stalling input or other vCPUs.
///   It is called once per transmitted byte, from the writing vCPU's thread.
public final class Serial16550: Sendable {
    /// Standard PC port base and ISA IRQ of COM1.
    public static let com1Base: UInt16 = 0x3F8
    public static let com1IRQ: UInt32 = 4
    /// Number of consecutive ports the UART decodes.
    public static let portCount: UInt16 = 8
    /// Default cap on host input waiting for the guest.
    public static let defaultInputCapacity = 64 * 1024
    /// Depth of the receive FIFO (used by loopback).
    static let fifoDepth = 16

    /// One transmitted byte at a time: a byte, not an array, so the console path (one exit
    /// per character) allocates nothing.
    private let output: @Sendable (UInt8) -> Void
    let interrupt: @Sendable (_ level: Bool) -> Void
    let state: Mutex<UARTState>

    public init(output: @escaping @Sendable (UInt8) -> Void,
                interrupt: @escaping @Sendable (_ level: Bool) -> Void,
                inputCapacity: Int = Serial16550.defaultInputCapacity) {
        self.output = output
        self.interrupt = interrupt
        self.state = Mutex(UARTState(inputCapacity: inputCapacity))
    }

    /// Guest read of the register at `offset` (0-7) from the base port.
    public func read(offset: UInt16) -> UInt8 {
        state.withLock { $0.read(offset: offset & 7, interrupt: interrupt) }
    }

    /// Guest write of the register at `offset` (0-7) from the base port.
    public func write(offset: UInt16, value: UInt8) {
        let transmitted = state.withLock { $0.write(offset: offset & 7, value: value, interrupt: interrupt) }
        if transmitted { output(value) }
    }

    /// Host input (stdin) for the guest. Queues as many bytes as fit under the input cap and
    /// returns how many were taken; the rest are dropped and counted in `inputDropped`.
    @discardableResult
    public func receive(_ bytes: [UInt8]) -> Int {
        if bytes.isEmpty { return 0 }
        return state.withLock { $0.receive(bytes, interrupt: interrupt) }
    }

    /// Bytes the guest has transmitted to `output` (loopback bytes excluded).
    public var bytesOutput: UInt64 { state.withLock { $0.bytesOutput } }
    /// Host input bytes dropped because the backlog was full.
    public var inputDropped: UInt64 { state.withLock { $0.inputDropped } }
    /// Host input bytes queued and not yet read by the guest.
    public var pendingInput: Int { state.withLock { $0.input.count } }
    /// Room left in the input backlog.
    public var inputSpace: Int { state.withLock { $0.input.freeSpace } }
    /// The level last passed to `interrupt` (false before any call).
    public var interruptLevel: Bool { state.withLock { $0.irqLevel } }
}

/// Register offsets and bits (names as in Linux's include/uapi/linux/serial_reg.h).
enum UART {
    static let rbrTHR: UInt16 = 0, ier: UInt16 = 1, iirFCR: UInt16 = 2, lcr: UInt16 = 3
    static let mcr: UInt16 = 4, lsr: UInt16 = 5, msr: UInt16 = 6, scr: UInt16 = 7

    static let ierRDI: UInt8 = 0x01, ierTHRI: UInt8 = 0x02, ierRLSI: UInt8 = 0x04, ierMSI: UInt8 = 0x08

    static let iirNoInt: UInt8 = 0x01, iirMSI: UInt8 = 0x00, iirTHRI: UInt8 = 0x02
    static let iirRDI: UInt8 = 0x04, iirRLSI: UInt8 = 0x06, iirFIFOEnabled: UInt8 = 0xC0

    static let fcrEnable: UInt8 = 0x01, fcrClearRcvr: UInt8 = 0x02

    static let lcrDLAB: UInt8 = 0x80

    static let mcrDTR: UInt8 = 0x01, mcrRTS: UInt8 = 0x02, mcrOUT1: UInt8 = 0x04
    static let mcrOUT2: UInt8 = 0x08, mcrLoop: UInt8 = 0x10

    static let lsrDR: UInt8 = 0x01, lsrOE: UInt8 = 0x02, lsrTHRE: UInt8 = 0x20, lsrTEMT: UInt8 = 0x40

    static let msrDCTS: UInt8 = 0x01, msrDDSR: UInt8 = 0x02, msrTERI: UInt8 = 0x04, msrDDCD: UInt8 = 0x08
    static let msrCTS: UInt8 = 0x10, msrDSR: UInt8 = 0x20, msrRI: UInt8 = 0x40, msrDCD: UInt8 = 0x80
}

/// The UART's registers and queues; lives inside `Serial16550`'s lock.
struct UARTState: Sendable {
    var ier: UInt8 = 0
    var lcr: UInt8 = 0
    var mcr: UInt8 = 0
    var scr: UInt8 = 0
    var dll: UInt8 = 0x0C   // 9600 baud from the 1.8432 MHz clock, as a BIOS leaves it
    var dlm: UInt8 = 0
    var fifoEnabled = false
    /// Sticky LSR error bits (only OE here), cleared by reading LSR.
    var lineErrors: UInt8 = 0
    /// MSR delta bits (low nibble), cleared by reading MSR.
    var msrDelta: UInt8 = 0
    /// THRE interrupt armed: set when THR empties, cleared by an IIR read reporting it.
    var thrInterrupt = false
    /// Level last reported through `interrupt`.
    var irqLevel = false
    /// Receive FIFO for loopback bytes.
    var loopFIFO = ByteRing(capacity: Serial16550.fifoDepth)
    /// Host input waiting to be read.
    var input: ByteRing
    var bytesOutput: UInt64 = 0
    var inputDropped: UInt64 = 0

    init(inputCapacity: Int) {
        input = ByteRing(capacity: inputCapacity)
    }

    var loopback: Bool { mcr & UART.mcrLoop != 0 }
    var dlab: Bool { lcr & UART.lcrDLAB != 0 }
    var dataReady: Bool { !loopFIFO.isEmpty || (!loopback && !input.isEmpty) }

    /// IIR bits 0-3 for the highest-priority pending interrupt (0x01 when none).
    var pendingInterrupt: UInt8 {
        if ier & UART.ierRLSI != 0 && lineErrors != 0 { return UART.iirRLSI }
        if ier & UART.ierRDI != 0 && dataReady { return UART.iirRDI }
        if ier & UART.ierTHRI != 0 && thrInterrupt { return UART.iirTHRI }
        if ier & UART.ierMSI != 0 && msrDelta != 0 { return UART.iirMSI }
        return UART.iirNoInt
    }

    /// MSR bits 4-7: the modem inputs.
    var modemInputs: UInt8 {
        guard loopback else { return UART.msrDCD | UART.msrDSR | UART.msrCTS }
        var lines: UInt8 = 0
        if mcr & UART.mcrDTR != 0 { lines |= UART.msrDSR }
        if mcr & UART.mcrRTS != 0 { lines |= UART.msrCTS }
        if mcr & UART.mcrOUT1 != 0 { lines |= UART.msrRI }
        if mcr & UART.mcrOUT2 != 0 { lines |= UART.msrDCD }
        return lines
    }

    /// Brings the interrupt line to the level the registers call for; reports changes only.
    mutating func syncInterrupt(_ interrupt: (Bool) -> Void) {
        let level = pendingInterrupt != UART.iirNoInt && mcr & UART.mcrOUT2 != 0 && !loopback
        if level != irqLevel {
            irqLevel = level
            interrupt(level)
        }
    }

    mutating func read(offset: UInt16, interrupt: (Bool) -> Void) -> UInt8 {
        switch offset {
        case UART.rbrTHR:
            if dlab { return dll }
            let byte = loopFIFO.pop() ?? (loopback ? nil : input.pop()) ?? 0
            syncInterrupt(interrupt)
            return byte
        case UART.ier:
            return dlab ? dlm : ier
        case UART.iirFCR:
            let id = pendingInterrupt
            if id == UART.iirTHRI {
                thrInterrupt = false   // reading IIR acknowledges THRE
                syncInterrupt(interrupt)
            }
            return id | (fifoEnabled ? UART.iirFIFOEnabled : 0)
        case UART.lcr:
            return lcr
        case UART.mcr:
            return mcr
        case UART.lsr:
            var lsr = UART.lsrTHRE | UART.lsrTEMT | lineErrors
            if dataReady { lsr |= UART.lsrDR }
            if lineErrors != 0 {
                lineErrors = 0
                syncInterrupt(interrupt)
            }
            return lsr
        case UART.msr:
            let msr = modemInputs | msrDelta
            if msrDelta != 0 {
                msrDelta = 0
                syncInterrupt(interrupt)
            }
            return msr
        default:
            return scr
        }
    }

    /// Returns true when `value` was transmitted and must be passed to `output`.
    mutating func write(offset: UInt16, value: UInt8, interrupt: (Bool) -> Void) -> Bool {
        var transmitted = false
        switch offset {
        case UART.rbrTHR:
            if dlab { dll = value; return false }
            if loopback {
                let depth = fifoEnabled ? Serial16550.fifoDepth : 1
                if loopFIFO.count < depth { loopFIFO.push(value) } else { lineErrors |= UART.lsrOE }
            } else {
                bytesOutput &+= 1
                transmitted = true
            }
            thrInterrupt = true   // the holding register is empty again at once
        case UART.ier:
            if dlab { dlm = value; return false }
            let old = ier
            ier = value & 0x0F
            // Enabling THRI while THR is empty raises the interrupt even if an IIR read had
            // acknowledged it (Linux's startup THRE test relies on this); disabling drops it.
            if (old ^ ier) & UART.ierTHRI != 0 { thrInterrupt = ier & UART.ierTHRI != 0 }
        case UART.iirFCR:
            let enable = value & UART.fcrEnable != 0
            if enable != fifoEnabled {
                fifoEnabled = enable
                loopFIFO.removeAll()   // switching FIFO mode resets the FIFOs
            } else if enable && value & UART.fcrClearRcvr != 0 {
                loopFIFO.removeAll()
            }
            // Clearing the transmit FIFO has nothing to do: TX is instantaneous.
        case UART.lcr:
            lcr = value
        case UART.mcr:
            let before = modemInputs
            mcr = value & 0x1F
            let after = modemInputs
            let changed = before ^ after
            if changed & UART.msrCTS != 0 { msrDelta |= UART.msrDCTS }
            if changed & UART.msrDSR != 0 { msrDelta |= UART.msrDDSR }
            if before & UART.msrRI != 0 && after & UART.msrRI == 0 { msrDelta |= UART.msrTERI }
            if changed & UART.msrDCD != 0 { msrDelta |= UART.msrDDCD }
        case UART.lsr, UART.msr:
            break   // factory-test writes: ignored
        default:
            scr = value
        }
        syncInterrupt(interrupt)
        return transmitted
    }

    mutating func receive(_ bytes: [UInt8], interrupt: (Bool) -> Void) -> Int {
        let taken = input.push(contentsOf: bytes)
        if taken < bytes.count {
            inputDropped &+= UInt64(bytes.count - taken)
            lineErrors |= UART.lsrOE
        }
        syncInterrupt(interrupt)
        return taken
    }
}
