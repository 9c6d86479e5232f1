import Host
import Virtio

/// One virtqueue's ioeventfd: KVM signals it when the guest writes the queue's index to
/// QueueNotify, without stopping the vCPU in svm; the event loop then runs the queue.
final class QueueNotifier: EventSource {
    let event: EventFD
    let transport: VirtioMMIOTransport
    let queue: Int

    init(event: EventFD, transport: VirtioMMIOTransport, queue: Int) {
        self.event = event
        self.transport = transport
        self.queue = queue
    }

    func handleEvent(fd: Int32, events: UInt32) {
        event.drain()
        transport.notify(queue: queue)
    }
}

/// A virtio-mmio transport's 4 KiB window on the MMIO bus.
final class TransportWindow: BusDevice {
    let transport: VirtioMMIOTransport
    init(_ transport: VirtioMMIOTransport) { self.transport = transport }

    func read(offset: UInt64, into data: UnsafeMutableRawBufferPointer) {
        let value = transport.read(offset: offset, size: data.count)
        for i in 0..<data.count { data[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    func write(offset: UInt64, from data: UnsafeRawBufferPointer) {
        var value: UInt64 = 0
        for i in 0..<data.count { value |= UInt64(data[i]) << (8 * UInt64(i)) }
        transport.write(offset: offset, size: data.count, value: value)
    }
}
