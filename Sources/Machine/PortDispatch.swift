import Devices

/// Routes port I/O exits to devices with a switch on small port ranges: no allocation,
/// no lookup structure, no dynamic dispatch on the exit path. Ports KVM handles itself
/// (PIC 0x20/0xA0, PIT 0x40-0x43, 0x61, ELCR 0x4D0) never get here.
final class PortDispatch: @unchecked Sendable {
    unowned(unsafe) var machine: Machine!

    static let com1: ClosedRange<UInt16> = 0x3F8...0x3FF

    /// Unknown ports read as all ones, like an empty ISA bus.
    @inline(__always)
    func read(port: UInt16) -> UInt8 {
        switch port {
        case Self.com1: return machine.serial.read(offset: port - Self.com1.lowerBound)
        case 0x60, 0x64: return machine.i8042.read(port: port)
        case 0x70, 0x71: return machine.cmos.read(port: port)
        default: return 0xFF
        }
    }

    @inline(__always)
    func write(port: UInt16, value: UInt8) {
        switch port {
        case Self.com1: machine.serial.write(offset: port - Self.com1.lowerBound, value: value)
        case 0x60, 0x64: machine.i8042.write(port: port, value: value)
        case 0x70, 0x71: machine.cmos.write(port: port, value: value)
        default: break
        }
    }
}
