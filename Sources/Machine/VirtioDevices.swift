import Host
import KVM
import Memory
import Virtio

/// The VM's virtio-mmio devices: built from the config before guest memory exists (so
/// bad disks or TAP names are reported as bad input early), then attached to the VM:
/// one irqfd per device, one ioeventfd per queue.
final class VirtioDevices: @unchecked Sendable {
    /// Devices in MMIO slot order.
    let devices: [any VirtioDevice]
    let consoles: [VirtioConsole]
    let networks: [VirtioNet]
    private(set) var transports: [VirtioMMIOTransport] = []
    /// Queue notifications the event loop waits on: (eventfd, transport index, queue).
    private(set) var notifiers: [(event: EventFD, transport: Int, queue: Int)] = []
    private var interruptFDs: [EventFD] = []

    init(config: MachineConfig) throws(MachineError) {
        var devices: [any VirtioDevice] = []
        for disk in config.disks {
            do { devices.append(try VirtioBlock(path: disk.path, readOnly: disk.readOnly)) }
            catch { throw .badInput("--disk \(disk.path): \(error)") }
        }
        var networks: [VirtioNet] = []
        for net in config.networks {
            let mac: MACAddress
            if let text = net.mac {
                guard let parsed = MACAddress(text) else { throw .badInput("--net mac=\(text): not a MAC address") }
                mac = parsed
            } else {
                mac = MACAddress.random()
            }
            do { networks.append(try VirtioNet(mac: mac, tapInterface: net.tapName)) }
            catch { throw .badInput("--net tap=\(net.tapName): \(error)") }
        }
        devices += networks as [any VirtioDevice]
        let consoles = config.virtioConsoles.map { VirtioConsole(output: $0.output) }
        devices += consoles as [any VirtioDevice]
        if config.entropyDevice { devices.append(VirtioRNG()) }
        guard devices.count <= VirtioLayout.maximumDevices else {
            throw .badInput("too many virtio devices (\(devices.count)); svm supports \(VirtioLayout.maximumDevices)")
        }
        self.devices = devices
        self.consoles = consoles
        self.networks = networks
    }

    var commandLineEntries: [String] { devices.indices.map(VirtioLayout.commandLineEntry) }

    /// Creates the transports over guest memory and wires interrupts and notifications
    /// into KVM, so the guest's queue kicks and our interrupts never pass a vCPU thread.
    func attach(to vm: VirtualMachine, memory: GuestMemory) throws(MachineError) {
        for (index, device) in devices.enumerated() {
            let irq: EventFD
            do { irq = try EventFD() } catch { throw .host(error) }
            do { try vm.registerIRQFD(eventfd: irq.fd, gsi: VirtioLayout.irqs[index]) } catch { throw .kvm(error) }
            interruptFDs.append(irq)
            let transport = VirtioMMIOTransport(device: device, memory: memory, interrupt: { irq.signal() })
            transports.append(transport)
            for queue in 0..<device.queueCount {
                let event: EventFD
                do { event = try EventFD() } catch { throw .host(error) }
                do {
                    try vm.registerIOEventFD(
                        eventfd: event.fd,
                        address: VirtioLayout.address(of: index) + VirtioMMIOTransport.queueNotifyOffset,
                        length: 4, datamatch: UInt64(queue))
                } catch { throw .kvm(error) }
                notifiers.append((event, index, queue))
            }
        }
    }

    /// A guest access to the virtio MMIO range: returns false if `address` is not a device.
    @inline(__always)
    func handle(address: UInt64, data: UnsafeMutableRawBufferPointer, isWrite: Bool) -> Bool {
        guard address >= VirtioLayout.base else { return false }
        let slot = (address - VirtioLayout.base) / VirtioLayout.stride
        guard slot < UInt64(transports.count) else { return false }
        let offset = (address - VirtioLayout.base) % VirtioLayout.stride
        let size = min(data.count, 8)
        let transport = transports[Int(slot)]
        if isWrite {
            var value: UInt64 = 0
            for i in 0..<size { value |= UInt64(data[i]) << (8 * UInt64(i)) }
            transport.write(offset: offset, size: size, value: value)
        } else {
            let value = transport.read(offset: offset, size: size)
            for i in 0..<size { data[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        return true
    }
}
