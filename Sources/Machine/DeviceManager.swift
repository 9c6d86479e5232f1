import Devices
import Host
import KVM
import Memory
import VhostUser
import Virtio

/// Builds the VM's device set and wires it up: the PC's port-I/O devices and the virtio
/// devices on their buses, interrupts and queue notifications into KVM, descriptors into
/// the event loop. Devices are found by role (`console(role:)`), never by position.
///
/// Virtio devices are made from the config before any KVM object exists, so a bad disk or
/// TAP name is reported as bad input before anything is set up; `attach` then places them.
///
/// Sendable invariant: everything is set during building (`init`, `attach*`), before any
/// vCPU or event-loop thread runs, and only read afterwards.
final class DeviceManager: @unchecked Sendable {
    let portBus = Bus(name: "port I/O")
    let mmioBus = Bus(name: "MMIO")

    /// Virtio devices in MMIO slot order.
    let virtioDevices: [any VirtioDevice]
    let networks: [VirtioNet]
    let sharedFolders: [VirtioFS]
    private let consoles: [(role: ConsoleRole, device: VirtioConsole)]
    private(set) var transports: [VirtioMMIOTransport] = []
    private var notifiers: [QueueNotifier] = []
    private var interruptFDs: [EventFD] = []

    /// `scan` sees the output of consoles configured with `scanForGuestEvents`.
    init(config: MachineConfig, scan: @escaping @Sendable ([UInt8]) -> Void) throws(MachineError) {
        var devices: [any VirtioDevice] = []
        for disk in config.disks {
            do { devices.append(try VirtioBlock(path: disk.path, readOnly: disk.readOnly)) }
            catch { throw .disk(path: disk.path, reason: "\(error)") }
        }
        var networks: [VirtioNet] = []
        for net in config.networks {
            let mac: MACAddress
            if let text = net.mac {
                guard let parsed = MACAddress(text) else { throw .badMAC(text) }
                mac = parsed
            } else {
                mac = MACAddress.random()
            }
            do { networks.append(try VirtioNet(mac: mac, tapInterface: net.tapName)) }
            catch { throw .network(tap: net.tapName, reason: "\(error)") }
        }
        devices += networks as [any VirtioDevice]
        var consoleConfigs = config.virtioConsoles
        if config.agentPort {
            // The guest's init writes nothing back on it yet; what it might is dropped.
            consoleConfigs.append(VirtioConsoleConfig(role: .agent) { _ in })
        }
        var consoles: [(ConsoleRole, VirtioConsole)] = []
        for c in consoleConfigs {
            guard !consoles.contains(where: { $0.0 == c.role }) else {
                throw .badInput("two virtio consoles with the role \(c.role)")
            }
            var output: @Sendable ([UInt8]) -> Void = c.output
            if c.scanForGuestEvents {
                let plain = output
                output = { bytes in
                    plain(bytes)
                    scan(bytes)
                }
            }
            let device = VirtioConsole(output: output)
            consoles.append((c.role, device))
        }
        devices += consoles.map(\.1) as [any VirtioDevice]
        if config.entropyDevice { devices.append(VirtioRNG()) }
        // Last, so the other devices keep their slots (and the guest its device names).
        var folders: [VirtioFS] = []
        for share in config.sharedFolders {
            do { folders.append(try VirtioFS(tag: share.tag, socketPath: share.socketPath, failure: config.deviceFailure)) }
            catch { throw .sharedFolder(tag: share.tag, reason: "\(error)") }
        }
        devices += folders as [any VirtioDevice]
        self.sharedFolders = folders
        guard devices.count <= VirtioLayout.maximumDevices else {
            throw .tooManyDevices(count: devices.count, maximum: VirtioLayout.maximumDevices)
        }
        virtioDevices = devices
        self.networks = networks
        self.consoles = consoles
    }

    func console(role: ConsoleRole) -> VirtioConsole? {
        consoles.first { $0.role == role }?.device
    }

    /// The guest's name for the console with `role`: hvc0, hvc1, … in config order (Linux
    /// numbers virtio consoles as it probes them, in MMIO slot order).
    func consoleDeviceName(role: ConsoleRole) -> String? {
        consoles.firstIndex { $0.role == role }.map { "hvc\($0)" }
    }

    /// `virtio_mmio.device=` entries announcing every device to Linux.
    var commandLineEntries: [String] { virtioDevices.indices.map(VirtioLayout.commandLineEntry) }

    /// Places the PC's byte-wide port devices on the port bus.
    func attachLegacy(serial: Serial16550, i8042: I8042, cmos: CMOS) throws(MachineError) {
        do {
            try portBus.register(SerialPorts(serial), base: SerialPorts.base, size: UInt64(Serial16550.portCount), name: "COM1")
            try portBus.register(I8042Port(i8042, port: I8042.dataPort), base: UInt64(I8042.dataPort), size: 1, name: "i8042 data")
            try portBus.register(I8042Port(i8042, port: I8042.commandPort), base: UInt64(I8042.commandPort), size: 1, name: "i8042 command")
            try portBus.register(CMOSPorts(cmos), base: CMOSPorts.base, size: 2, name: "CMOS")
        } catch { throw .badInput("\(error)") }
    }

    /// Creates the transports over guest memory, gives each device an irqfd and each queue
    /// an ioeventfd (so the guest's kicks and our interrupts never pass a vCPU thread in
    /// svm), and registers every descriptor with `loop`.
    func attachVirtio(to vm: VirtualMachine, memory: GuestMemory, loop: EventLoop) throws(MachineError) {
        for (index, device) in virtioDevices.enumerated() {
            let irq: EventFD
            do { irq = try EventFD() } catch { throw .host(error) }
            do { try vm.registerIRQFD(eventfd: irq.fd, gsi: VirtioLayout.irqs[index]) } catch { throw .kvm(error) }
            interruptFDs.append(irq)
            let transport = VirtioMMIOTransport(device: device, memory: memory, interrupt: { irq.signal() })
            transports.append(transport)
            do {
                try mmioBus.register(TransportWindow(transport), base: VirtioLayout.address(of: index),
                                     size: VirtioLayout.stride, name: "virtio-mmio slot \(index)")
            } catch { throw .badInput("\(error)") }
            var kicks: [EventFD] = []
            for queue in 0..<device.queueCount {
                let event: EventFD
                do { event = try EventFD() } catch { throw .host(error) }
                do {
                    try vm.registerIOEventFD(
                        eventfd: event.fd,
                        address: VirtioLayout.address(of: index) + VirtioMMIOTransport.queueNotifyOffset,
                        length: 4, datamatch: UInt64(queue))
                } catch { throw .kvm(error) }
                kicks.append(event)
                guard !device.queueEventsGoToBackend else { continue }
                let notifier = QueueNotifier(event: event, transport: transport, queue: queue)
                do { try loop.add(fd: event.fd, source: notifier) } catch { throw .host(error) }
                notifiers.append(notifier)
            }
            if device.queueEventsGoToBackend {
                // The backend reads the kicks and writes the irqfd; the device keeps them open.
                device.connectQueueEvents(kicks: kicks, call: irq)
            }
            do { try device.register(with: loop) } catch { throw .host(error) }
        }
    }
}
