import OCI
import XCTest
import Sandbox

/// The engine's veth as `ip -j addr show` / `ip -4 -j route show` print it (iproute2 6.1,
/// from a podman 4.3 container's namespace), and what the guest gets from it.
final class NamespaceInterfaceTests: XCTestCase {
    static let lo = #"{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295}]}"#
    static func veth(name: String = "eth0", mac: String = "6A:3B:11:22:33:44", mtu: Int = 1500, address: String = "10.88.0.7",
                     prefix: Int = 16, linkType: String = "ether") -> String {
        #"{"ifindex":2,"link_index":7,"ifname":"\#(name)","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":\#(mtu),"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"\#(linkType)","address":"\#(mac)","broadcast":"ff:ff:ff:ff:ff:ff","link_netnsid":0,"addr_info":[{"family":"inet","local":"\#(address)","prefixlen":\#(prefix),"broadcast":"10.88.255.255","scope":"global","label":"\#(name)","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::683b:11ff:fe22:3344","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]}"#
    }
    static let routes = #"[{"dst":"default","gateway":"10.88.0.1","dev":"eth0","flags":[]},{"dst":"10.88.0.0/16","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"10.88.0.7","flags":[]}]"#

    func find(_ links: [String], routes: String = routes) throws -> NamespaceInterface? {
        try NamespaceInterface.find(addresses: Array("[\(links.joined(separator: ","))]".utf8), routes: Array(routes.utf8),
                                    exclude: ["svmtap0"])
    }

    func failure(_ links: [String], routes: String = routes) -> String {
        do {
            let found = try find(links, routes: routes)
            return "found \(String(describing: found))"
        } catch { return "\(error)" }
    }

    func testPodmansVethBecomesTheGuestsEth0() throws {
        let i = try XCTUnwrap(try find([Self.lo, Self.veth()]))
        XCTAssertEqual(i, NamespaceInterface(name: "eth0", mac: "6a:3b:11:22:33:44", mtu: 1500, address: "10.88.0.7",
                                             prefixLength: 16, gateway: "10.88.0.1"))
        XCTAssertEqual(i.guestNetwork, GuestNetwork(mac: [0x6a, 0x3b, 0x11, 0x22, 0x33, 0x44], address: [10, 88, 0, 7],
                                                    prefixLength: 16, gateway: [10, 88, 0, 1], mtu: 1500))
    }

    func testNoGatewayLeavesTheFieldEmpty() throws {
        let i = try XCTUnwrap(try find([Self.lo, Self.veth(prefix: 24)], routes: "[]"))
        XCTAssertNil(i.gateway)
        XCTAssertNil(i.guestNetwork.gateway, "no default route in the guest")
        XCTAssertEqual(i.guestNetwork.prefixLength, 24)
    }

    func testLoopbackOnlyIsNoNetwork() throws {
        XCTAssertNil(try find([Self.lo], routes: "[]"), "--network none: the guest keeps loopback only")
        // An interface without an IPv4 address, or our own TAP, is not the engine's.
        let bare = #"{"ifindex":3,"ifname":"dummy0","flags":[],"mtu":1500,"link_type":"ether","address":"02:00:00:00:00:01","addr_info":[]}"#
        XCTAssertNil(try find([Self.lo, bare, Self.veth(name: "svmtap0")], routes: "[]"))
    }

    func testSeveralInterfacesChooseTheDefaultRoutes() throws {
        let i = try find([Self.lo, Self.veth(name: "eth1", address: "10.89.0.3"), Self.veth()])
        XCTAssertEqual(i?.name, "eth0")
        XCTAssertEqual(i?.gateway, "10.88.0.1")
        XCTAssertTrue(failure([Self.veth(name: "eth1"), Self.veth()], routes: "[]").contains("2 interfaces with IPv4 addresses (eth1, eth0)"))
    }

    /// The namespace's contents are not svm's: each oddity is one line naming it.
    func testOddNamespacesAreOneLine() {
        let cases: [([String], String, String)] = [
            ([Self.veth(mac: "01:00:5e:00:00:01")], Self.routes, "eth0 has no usable MAC address"),
            ([Self.veth(mac: "6a:3b:11:22:33")], Self.routes, "eth0 has no usable MAC address"),
            ([Self.veth(mtu: 20)], Self.routes, "no MTU from 68 to 65535"),
            ([Self.veth(address: "10.88.0.300")], Self.routes, "without a valid address"),
            ([Self.veth(address: "10.88.0.7::")], Self.routes, "without a valid address"),
            ([Self.veth(prefix: 0)], Self.routes, "no prefix length from 1 to 32"),
            ([Self.veth(linkType: "none")], Self.routes, "eth0 is none, not Ethernet"),
            ([Self.veth()], #"[{"dst":"default","gateway":"10.88.0.1:x","dev":"eth0"}]"#, "default gateway \"10.88.0.1:x\" is not an IPv4"),
            ([Self.veth()], "{", "ip -4 -j route show: invalid JSON"),
        ]
        for (links, routes, expected) in cases {
            let message = failure(links, routes: routes)
            XCTAssertTrue(message.contains(expected), "got \(message), expected …\(expected)…")
            XCTAssertFalse(message.contains("\n"))
        }
        XCTAssertTrue(failure(["{}"]).contains("found nil"), "an entry without a name is skipped")
        do {
            _ = try NamespaceInterface.find(addresses: Array(#"{"a":1}"#.utf8), routes: Array("[]".utf8))
            XCTFail("an object is not an interface list")
        } catch { XCTAssertTrue("\(error)".contains("ip -j addr show: not a JSON array"), "\(error)") }
    }
}

/// Inputs scripts/fuzz found (target ip-json), kept as regression tests.
extension NamespaceInterfaceTests {
    /// A fullwidth digit passes `Character.isHexDigit` but not `UInt8(_:radix:)`: the MAC was
    /// accepted and became five bytes, and building the guest's N frame trapped.
    func testFullwidthDigitInTheMACIsRefused() {
        let link = #"{"ifindex":2,"ifname":"eth0","flags":["UP"],"mtu":1500,"link_type":"ether","address":"6a:３b:11:22:33:44","addr_info":[{"family":"inet","local":"10.88.0.7","prefixlen":16}]}"#
        XCTAssertTrue(failure([link], routes: "[]").contains("eth0 has no usable MAC address"), failure([link], routes: "[]"))
        XCTAssertTrue(failure([Self.veth(mac: "6a:3b:11:22:33:４４")]).contains("no usable MAC address"))
    }
}
