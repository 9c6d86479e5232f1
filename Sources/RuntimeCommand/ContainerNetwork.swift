import Glibc
import Host
import OCI
import Runner
import Sandbox
import Synchronization

/// The container's network, as Kata's "tcfilter" model does it: the VM process lives in
/// the container's network namespace (the engine's, joined; or a new one it makes, into
/// which the engine moves a veth after create), where the engine's veth has the
/// container's address. The VM's TAP is made there at boot; at `start`, tc mirred
/// redirects every frame arriving on the veth to the TAP and every frame from the TAP out
/// of the veth, and the guest init puts the veth's MAC, address, gateway and MTU on eth0
/// (the `N` frame), so the engine's bridge, NAT and port publishing see the guest as they
/// would see a container's process.
///
///   host bridge ── veth peer ══ netns: eth0 (veth) ⇄ tc redirect ⇄ svmtap0 ── virtio-net ── guest eth0
///
/// Why at start: buildah configures a RUN step's network through the state's pid after
/// create returns, and Docker's libnetwork-setkey hook moves the veth in at the end of
/// create; by start every engine has. Nothing persists: the TAP is not persistent (it goes
/// with this process's last fd on it), and `disconnect` removes the ingress qdiscs (their
/// filters with them) on every way out the process has; were it killed outright, the
/// engine deletes the veth, qdisc included.
final class ContainerNetwork: Sendable {
    static let tapName = "svmtap0"
    /// The guest's MAC until start gives it the veth's (locally administered).
    static let bootMAC = "02:73:76:6d:00:01"

    /// The devices whose ingress qdisc we added: only those are ours to remove.
    private let ingressAdded = Mutex<[String]>([])

    private init() {}

    /// Enters the container's network namespace: the engine's at `path`, or a new one.
    /// The whole process must be there, so call this before any thread starts: `setns`
    /// and `unshare` move only the calling thread, and threads created later inherit its
    /// namespace.
    static func enter(plan: ContainerPlan) throws(RuntimeFailure) -> ContainerNetwork? {
        do {
            if let path = plan.networkNamespace {
                try NetworkNamespace.join(path: path)
            } else if plan.newNetworkNamespace {
                try NetworkNamespace.createNew()
            } else {
                return nil
            }
        } catch { throw RuntimeFailure("network namespace: \(error)") }
        return ContainerNetwork()
    }

    /// What the VM needs at boot: a virtio-net on our TAP (made in this namespace).
    var vmNetwork: ContainerRequest.Network {
        ContainerRequest.Network(tapName: Self.tapName, mac: Self.bootMAC)
    }

    /// At start: finds the engine's interface, brings the TAP up with its MTU and
    /// redirects both ways. Returns what the guest's eth0 gets; nil when the namespace
    /// has loopback only (`--network none`): the guest keeps loopback only.
    func connect() throws(RuntimeFailure) -> GuestNetwork? {
        let addresses = try NetworkTool.run(["ip", "-j", "addr", "show"])
        let routes = try NetworkTool.run(["ip", "-4", "-j", "route", "show"])
        let found: NamespaceInterface?
        do { found = try NamespaceInterface.find(addresses: addresses, routes: routes, exclude: [Self.tapName]) } catch {
            throw RuntimeFailure("\(error)")
        }
        guard let interface = found else { return nil }
        let veth = interface.name, tap = Self.tapName
        try NetworkTool.run(["ip", "link", "set", "dev", tap, "mtu", String(interface.mtu), "up"])
        for (from, to) in [(veth, tap), (tap, veth)] {
            try NetworkTool.run(["tc", "qdisc", "add", "dev", from, "ingress"])
            ingressAdded.withLock { $0.append(from) }
            try NetworkTool.run(["tc", "filter", "add", "dev", from, "parent", "ffff:", "protocol", "all",
                                 "u32", "match", "u8", "0", "0", "action", "mirred", "egress", "redirect", "dev", to])
        }
        return interface.guestNetwork
    }

    /// Removes the redirects: the ingress qdiscs we added, and their filters with them
    /// (never one that was there before us). The TAP itself goes when this process's
    /// descriptor on it closes. Failures are ignored: a veth the engine already removed
    /// leaves nothing to undo.
    func disconnect() {
        let devices = ingressAdded.withLock { added -> [String] in
            defer { added = [] }
            return added
        }
        for device in devices.reversed() {
            _ = try? NetworkTool.execute(["tc", "qdisc", "del", "dev", device, "ingress"])
        }
    }
}
