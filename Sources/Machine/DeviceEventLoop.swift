import Glibc
import Host
import Virtio

/// The device thread: waits on every queue's ioeventfd and every TAP fd, and runs the
/// device work there, so vCPU threads never block on host I/O for virtio.
final class DeviceEventLoop: @unchecked Sendable {
    let devices: VirtioDevices
    let wake: EventFD
    let thread: HostThread

    init(devices: VirtioDevices) throws(MachineError) {
        self.devices = devices
        do { wake = try EventFD() } catch { throw .host(error) }
        let wake = self.wake
        thread = HostThread(name: "svm-devices") {
            DeviceEventLoop.loop(devices: devices, wake: wake)
        }
        do { try thread.start() } catch { throw .host(error) }
    }

    func stop() {
        wake.signal()
        thread.join()
    }

    private static func loop(devices: VirtioDevices, wake: EventFD) {
        let notifiers = devices.notifiers
        let nets = devices.networks.compactMap { net in net.backendFileDescriptor.map { (net, $0) } }
        var fds = [pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0)]
        fds += notifiers.map { pollfd(fd: $0.event.fd, events: Int16(POLLIN), revents: 0) }
        fds += nets.map { pollfd(fd: $0.1, events: Int16(POLLIN), revents: 0) }
        let netBase = 1 + notifiers.count
        while true {
            // A TAP is polled only while its device can take frames; otherwise check again
            // soon (activation and new receive buffers make it ready again).
            var waitMs: Int32 = -1
            for (i, net) in nets.enumerated() {
                let ready = net.0.wantsBackendInput
                fds[netBase + i].fd = ready ? net.1 : -1
                if !ready { waitMs = 20 }
            }
            let r = poll(&fds, nfds_t(fds.count), waitMs)
            if r < 0 { if errno == EINTR { continue } else { return } }
            if fds[0].revents != 0 { return }
            for (i, n) in notifiers.enumerated() where fds[1 + i].revents != 0 {
                n.event.drain()
                devices.transports[n.transport].notify(queue: n.queue)
            }
            for (i, net) in nets.enumerated() where fds[netBase + i].revents != 0 {
                net.0.processBackendInput()
            }
        }
    }
}
