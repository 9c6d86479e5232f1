import Glibc
import Host
import OCI
import Runner

/// The container's network, as Kata's "tcfilter" model does it: the VM process joins the
/// engine's network namespace, where the engine has put a veth with the container's
/// address; the VM's TAP is created there, and tc mirred redirects every frame arriving on
/// the veth to the TAP and every frame from the TAP out of the veth. The guest's virtio-net
/// has the veth's MAC and the guest's eth0 the veth's address, so the engine's bridge,
/// NAT and port publishing see the guest as they would see a container's process.
///
///   host bridge ── veth peer ══ netns: eth0 (veth) ⇄ tc redirect ⇄ svmtap0 ── virtio-net ── guest eth0
///
/// Nothing persists: the TAP is not persistent (it goes with this process's last fd on it),
/// and `disconnect` removes the ingress qdiscs (their filters with them) on every way out
/// the process has; were it killed outright, the engine deletes the veth, qdisc included.
final class ContainerNetwork {
    static let tapName = "svmtap0"

    let interface: NamespaceInterface
    /// The devices whose ingress qdisc we added: only those are ours to remove.
    private var ingressAdded: [String] = []

    private init(interface: NamespaceInterface) { self.interface = interface }

    /// Joins the network namespace at `path` and finds the engine's interface in it. nil
    /// when it has none but loopback (the guest keeps loopback only). The whole process
    /// must join, so call this before any thread starts: `setns` moves only the calling
    /// thread, and threads created later inherit its namespace.
    static func join(namespace path: String) throws(RuntimeFailure) -> ContainerNetwork? {
        do { try NetworkNamespace.join(path: path) } catch { throw RuntimeFailure("network namespace: \(error)") }
        let addresses = try NetworkTool.run(["ip", "-j", "addr", "show"])
        let routes = try NetworkTool.run(["ip", "-4", "-j", "route", "show"])
        do {
            guard let interface = try NamespaceInterface.find(addresses: addresses, routes: routes, exclude: [tapName]) else {
                return nil
            }
            return ContainerNetwork(interface: interface)
        } catch { throw RuntimeFailure("\(path): \(error)") }
    }

    /// What the VM needs: a virtio-net on our TAP with the veth's MAC, and the kernel's
    /// static IP configuration for the guest's eth0.
    var vmNetwork: ContainerRequest.Network {
        ContainerRequest.Network(tapName: Self.tapName, mac: interface.mac, kernelArgument: interface.kernelArgument)
    }

    /// Once the VM has created the TAP: bring it up with the veth's MTU and redirect both
    /// ways. The guest is still booting then (a minute on our hosts); nothing is lost.
    func connect() throws(RuntimeFailure) {
        let veth = interface.name, tap = Self.tapName
        try NetworkTool.run(["ip", "link", "set", "dev", tap, "mtu", String(interface.mtu), "up"])
        for (from, to) in [(veth, tap), (tap, veth)] {
            try NetworkTool.run(["tc", "qdisc", "add", "dev", from, "ingress"])
            ingressAdded.append(from)
            try NetworkTool.run(["tc", "filter", "add", "dev", from, "parent", "ffff:", "protocol", "all",
                                 "u32", "match", "u8", "0", "0", "action", "mirred", "egress", "redirect", "dev", to])
        }
    }

    /// Removes the redirects: the ingress qdiscs we added, and their filters with them
    /// (never one that was there before us). The TAP itself goes when this process's
    /// descriptor on it closes. Failures are ignored: a veth the engine already removed
    /// leaves nothing to undo.
    func disconnect() {
        for device in ingressAdded.reversed() {
            _ = try? NetworkTool.execute(["tc", "qdisc", "del", "dev", device, "ingress"])
        }
        ingressAdded = []
    }
}
