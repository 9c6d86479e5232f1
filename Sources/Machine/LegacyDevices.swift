import Devices
import Glibc

/// The port-I/O devices of the PC that svm emulates, on the port bus. They are byte-wide:
/// the vCPU loop splits wider accesses into consecutive ports, as an ISA bus would.
/// Ports KVM emulates itself (PIC 0x20/0xA0, PIT 0x40-0x43, 0x61, ELCR 0x4D0) never exit.

/// COM1, 0x3F8-0x3FF.
final class SerialPorts: BusDevice {
    static let base = UInt64(Serial16550.com1Base)
    let uart: Serial16550
    init(_ uart: Serial16550) { self.uart = uart }

    func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        data[0] = uart.read(offset: UInt16(offset))
    }

    func write(offset: UInt64, from data: UnsafeRawBufferPointer) {
        uart.write(offset: UInt16(offset), value: data[0])
    }
}

/// The i8042's data (0x60) and command/status (0x64) ports; its reset line is how Linux
/// reboots with `reboot=k`. Registered as two one-port ranges (0x61 is KVM's).
final class I8042Port: BusDevice {
    let controller: I8042
    let port: UInt16
    init(_ controller: I8042, port: UInt16) {
        self.controller = controller
        self.port = port
    }

    func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        data[0] = controller.read(port: port)
    }

    func write(offset: UInt64, from data: UnsafeRawBufferPointer) {
        controller.write(port: port, value: data[0])
    }
}

/// CMOS/RTC index and data ports, 0x70-0x71.
final class CMOSPorts: BusDevice {
    static let base = UInt64(CMOS.indexPort)
    let cmos: CMOS
    init(_ cmos: CMOS) { self.cmos = cmos }

    func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        data[0] = cmos.read(port: CMOS.indexPort + UInt16(offset))
    }

    func write(offset: UInt64, from data: UnsafeRawBufferPointer) {
        cmos.write(port: CMOS.indexPort + UInt16(offset), value: data[0])
    }
}
