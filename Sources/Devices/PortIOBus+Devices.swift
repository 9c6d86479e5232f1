/// Wiring of this module's legacy PC devices onto a `PortIOBus` at their standard ports.
extension PortIOBus {
    /// A UART's eight registers at `base` (COM1: 0x3F8-0x3FF).
    public func register(serial: Serial16550, base: UInt16 = Serial16550.com1Base, name: String = "ttyS0") throws {
        try register(base...(base + Serial16550.portCount - 1), name: name,
                     read: { port in serial.read(offset: port &- base) },
                     write: { port, value in serial.write(offset: port &- base, value: value) })
    }

    /// The PS/2 controller at 0x60 (data) and 0x64 (status/command). Port 0x61 (system
    /// control port B) between them is left unclaimed.
    public func register(i8042: I8042) throws {
        for port in [I8042.dataPort, I8042.commandPort] {
            try register(port...port, name: "i8042",
                         read: { i8042.read(port: $0) },
                         write: { i8042.write(port: $0, value: $1) })
        }
    }

    /// The RTC/CMOS at 0x70 (index) and 0x71 (data).
    public func register(cmos: CMOS) throws {
        try register(CMOS.indexPort...CMOS.dataPort, name: "cmos",
                     read: { cmos.read(port: $0) },
                     write: { cmos.write(port: $0, value: $1) })
    }
}
