import Control
import Sandbox

/// The interface an engine put in a container's network namespace (podman's veth `eth0`),
/// as iproute2 describes it with `ip -j addr show` and `ip -j route show`: what the guest's
/// virtio-net takes over (its MAC, address, prefix, gateway, MTU). Pure, so that what the
/// namespace holds — input svm did not write — is checked in one place and unit-tested.
public struct NamespaceInterface: Equatable, Sendable {
    public var name: String
    public var mac: String
    public var mtu: Int
    public var address: String
    public var prefixLength: Int
    /// The IPv4 default route's gateway through this interface, if there is one.
    public var gateway: String?

    public init(name: String, mac: String, mtu: Int, address: String, prefixLength: Int, gateway: String?) {
        self.name = name
        self.mac = mac
        self.mtu = mtu
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
    }

    /// The one interface with an IPv4 address besides loopback (`exclude` names ours, the
    /// TAP), or the default route's if there are several. nil when there is none: a
    /// namespace with loopback only (`--network none`) gives the guest loopback only.
    public static func find(addresses: [UInt8], routes: [UInt8], exclude: Set<String> = []) throws(OCIError) -> NamespaceInterface? {
        let links = try list(addresses, what: "ip -j addr show")
        let routeList = try list(routes, what: "ip -4 -j route show")
        var candidates: [NamespaceInterface] = []
        for link in links {
            guard let name = link["ifname"]?.string, !exclude.contains(name) else { continue }
            let flags = link["flags"]?.array?.compactMap(\.string) ?? []
            if link["link_type"]?.string == "loopback" || flags.contains("LOOPBACK") { continue }
            guard let inet = link["addr_info"]?.array?.first(where: { $0["family"]?.string == "inet" }) else { continue }
            guard link["link_type"]?.string == "ether" else {
                throw OCIError("network namespace: interface \(name) is \(link["link_type"]?.string ?? "of no link type"), not Ethernet")
            }
            guard let macText = link["address"]?.string, let mac = canonicalMAC(macText) else {
                throw OCIError("network namespace: interface \(name) has no usable MAC address")
            }
            guard let mtu = link["mtu"]?.int, (68...65535).contains(mtu) else {
                throw OCIError("network namespace: interface \(name) has no MTU from 68 to 65535")
            }
            guard let local = inet["local"]?.string, ipv4(local) != nil else {
                throw OCIError("network namespace: interface \(name) has an IPv4 entry without a valid address")
            }
            guard let prefix = inet["prefixlen"]?.int, (1...32).contains(prefix) else {
                throw OCIError("network namespace: \(name)'s address \(local) has no prefix length from 1 to 32")
            }
            candidates.append(NamespaceInterface(name: name, mac: mac, mtu: mtu, address: local, prefixLength: prefix, gateway: nil))
        }
        let defaultRoute = routeList.first { $0["dst"]?.string == "default" && $0["gateway"]?.string != nil }
        var chosen: NamespaceInterface
        if candidates.count == 1 {
            chosen = candidates[0]
        } else if let dev = defaultRoute?["dev"]?.string, let match = candidates.first(where: { $0.name == dev }) {
            chosen = match
        } else if candidates.isEmpty {
            return nil
        } else {
            throw OCIError("network namespace: \(candidates.count) interfaces with IPv4 addresses (\(candidates.map(\.name).joined(separator: ", "))) and no default route to choose one; svm connects one")
        }
        if let route = defaultRoute, route["dev"]?.string == chosen.name, let gateway = route["gateway"]?.string {
            guard ipv4(gateway) != nil else { throw OCIError("network namespace: default gateway \(gateway.debugDescription) is not an IPv4 address") }
            chosen.gateway = gateway
        }
        return chosen
    }

    /// What the guest init puts on eth0 (the `N` frame): every field was checked by `find`.
    public var guestNetwork: GuestNetwork {
        let macBytes = mac.split(separator: ":").compactMap { UInt8($0, radix: 16) }
        return GuestNetwork(mac: macBytes, address: Self.ipv4(address) ?? [0, 0, 0, 0], prefixLength: UInt8(prefixLength),
                            gateway: gateway.flatMap(Self.ipv4), mtu: UInt32(mtu))
    }

    /// Four decimal octets, nothing else.
    static func ipv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let n = UInt8(p) else { return nil }
            octets.append(n)
        }
        return octets
    }

    /// Six hex pairs separated by colons, lower-cased; a unicast address (the guest uses it).
    /// ASCII digits only: `Character.isHexDigit` also accepts fullwidth forms ("３"), which
    /// `UInt8(_:radix:)` then refuses, and a MAC of five bytes would reach the guest frame.
    static func canonicalMAC(_ text: String) -> String? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6, parts.allSatisfy({ $0.utf8.count == 2 && $0.allSatisfy { $0.isASCII && $0.isHexDigit } }),
              let first = UInt8(parts[0], radix: 16), first & 1 == 0 else { return nil }
        let mac = parts.joined(separator: ":").lowercased()
        return mac == "00:00:00:00:00:00" ? nil : mac
    }

    private static func list(_ bytes: [UInt8], what: String) throws(OCIError) -> [ControlValue] {
        let value: ControlValue
        do { value = try JSONParser.parse(bytes) } catch { throw OCIError("network namespace: \(what): \(error)") }
        guard let array = value.array else { throw OCIError("network namespace: \(what): not a JSON array") }
        return array
    }
}
