import Synchronization

/// Just enough of the PS/2 controller (i8042) at ports 0x60 (data) and 0x64 (status/command)
/// for Linux's keyboard-controller reboot (`reboot=k`: 0xFE to port 0x64) and for harmless
/// probing. No keyboard or mouse is attached and no interrupt (IRQ 1/12) is ever raised.
///
/// - Status (read 0x64): SYS flag and "not inhibited" always set, input buffer never full
///   (so `kb_wait()` loops end at once), output-buffer-full only while a command response
///   waits in the data port.
/// - Commands: 0x20 read / 0x60 write the command byte; 0xAA self-test (0x55); 0xAB keyboard
///   interface test (0x00); 0xA7/0xA8, 0xAD/0xAE disable/enable the ports in the command byte;
///   0xD1 writes the output port (bit 0 clear asserts reset); 0xD2/0xD3 echo the next data
///   byte back; 0xF0-0xFF pulse output-port lines, and those with bit 0 clear (0xFE, the one
///   Linux uses) pulse the reset line. Other commands and bytes for the (absent) keyboard
///   are ignored.
/// - Data (read 0x60): the pending response, else 0.
///
/// `reset` is called (without the lock held) once per reset request; Linux writes 0xFE up to
/// ten times in a row while waiting for the reset to happen, so the closure must be idempotent.
public final class I8042: Sendable {
    public static let dataPort: UInt16 = 0x60
    public static let commandPort: UInt16 = 0x64

    private let reset: @Sendable () -> Void
    let state = Mutex(State())

    struct State: Sendable {
        /// Controller configuration byte: keyboard interrupt, system flag, scancode translation.
        var commandByte: UInt8 = 0x45
        /// Response waiting in the output buffer.
        var outputBuffer: UInt8?
        /// A controller command waiting for its data byte on port 0x60.
        var awaitingData: UInt8?
        /// Status bit 3: the last write went to the command port.
        var lastWriteWasCommand = false
        var outputPort: UInt8 = 0x01
    }

    enum Status {
        static let outputFull: UInt8 = 0x01
        static let system: UInt8 = 0x04
        static let command: UInt8 = 0x08
        static let notInhibited: UInt8 = 0x10
    }

    public init(reset: @escaping @Sendable () -> Void) {
        self.reset = reset
    }

    /// `port` is the absolute port (0x60 or 0x64); other ports read as 0xFF.
    public func read(port: UInt16) -> UInt8 {
        state.withLock { s in
            switch port {
            case I8042.commandPort:
                var status = Status.system | Status.notInhibited
                if s.outputBuffer != nil { status |= Status.outputFull }
                if s.lastWriteWasCommand { status |= Status.command }
                return status
            case I8042.dataPort:
                defer { s.outputBuffer = nil }
                return s.outputBuffer ?? 0
            default:
                return 0xFF
            }
        }
    }

    public func write(port: UInt16, value: UInt8) {
        let resetRequested = state.withLock { s -> Bool in
            switch port {
            case I8042.commandPort:
                s.lastWriteWasCommand = true
                s.awaitingData = nil
                return I8042.command(value, &s)
            case I8042.dataPort:
                s.lastWriteWasCommand = false
                guard let command = s.awaitingData else { return false }   // for the absent keyboard
                s.awaitingData = nil
                switch command {
                case 0x60:
                    s.commandByte = value
                case 0xD1:
                    s.outputPort = value
                    return value & 0x01 == 0
                default:   // 0xD2, 0xD3: echo as if from the keyboard / mouse
                    s.outputBuffer = value
                }
                return false
            default:
                return false
            }
        }
        if resetRequested { reset() }
    }

    /// Runs controller command `value`; returns true when it pulses the reset line.
    private static func command(_ value: UInt8, _ s: inout State) -> Bool {
        switch value {
        case 0x20: s.outputBuffer = s.commandByte
        case 0x60, 0xD1, 0xD2, 0xD3: s.awaitingData = value
        case 0xA7: s.commandByte |= 0x20
        case 0xA8: s.commandByte &= ~0x20
        case 0xAA: s.outputBuffer = 0x55
        case 0xAB: s.outputBuffer = 0x00
        case 0xAD: s.commandByte |= 0x10
        case 0xAE: s.commandByte &= ~0x10
        case 0xF0...0xFF: return value & 0x01 == 0
        default: break
        }
        return false
    }
}
