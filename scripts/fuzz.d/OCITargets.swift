// A bundle's config.json, an exec's process.json and the engine's network namespace as
// `ip -j` prints it (Sources/OCI): written by whoever hands svm-runtime a bundle.
import Control
@testable import OCI
import Sandbox

enum OCIConfigTarget {
    static let target = FuzzTarget(
        name: "oci-config",
        covers: "OCISpec.decode (config.json) → ContainerPlan.make → JobWriter.encode: a plan's job and shares are well-formed",
        seeds: { [
            #"{"ociVersion":"1.0.2-dev","process":{"user":{"uid":0,"gid":0,"additionalGids":[10]},"args":["sh","-c","echo hi"],"env":["PATH=/usr/bin:/bin","TERM=xterm"],"cwd":"/","capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1048576,"soft":1048576},{"type":"RLIMIT_CORE","hard":18446744073709551615,"soft":0}],"noNewPrivileges":true,"umask":18},"root":{"path":"/var/lib/containers/x/merged"},"hostname":"abc","mounts":[{"destination":"/proc","type":"proc","source":"proc","options":["nosuid","noexec","nodev"]},{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},{"destination":"/etc/hosts","type":"bind","source":"/userdata/hosts","options":["bind","rprivate"]},{"destination":"/data","type":"bind","source":"/srv/data","options":["rbind","ro"]}],"annotations":{"io.svm.mem":"512M"},"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/run/netns/n1"}],"resources":{"cpu":{"quota":150000,"period":100000}}}}"#,
            #"{"ociVersion":"1.0.2","process":{"terminal":true,"consoleSize":{"height":24,"width":80},"user":{"uid":1000,"gid":1000},"args":["/bin/sh"],"cwd":"/home"},"root":{"path":"rootfs","readonly":true},"hooks":{"prestart":[{"path":"/usr/bin/hook","args":["hook","x"],"timeout":5}]},"linux":{"namespaces":[{"type":"network"}]}}"#,
        ].map { Array($0.utf8) } },
        run: { bytes in
            guard let spec = try? OCISpec.decode(bytes) else { return }
            // Host paths are not looked at: their kind is a function of the name.
            let kind: (String) -> ContainerPlan.PathKind = { path in
                [.directory, .file, .missing, .other][path.utf8.reduce(0) { ($0 &+ Int($1)) & 3 }]
            }
            guard let plan = try? ContainerPlan.make(spec: spec, bundle: "/bundle", hostCPUs: 2, kind: kind) else { return }
            fuzzCheck((1...2).contains(plan.cpus), "\(plan.cpus) vCPUs on a 2-CPU host")
            fuzzCheck(plan.memory > 0, "a VM without memory")
            for share in plan.shares {
                fuzzCheck(share.hostPath.hasPrefix("/") && !share.tag.isEmpty, "share \(share)")
            }
            for file in plan.files {
                fuzzCheck(file.hostPath.hasPrefix("/") && !file.initramfsPath.split(separator: "/").contains(".."),
                          "initramfs file \(file)")
            }
            if let job = try? JobWriter.encode(plan.job) {
                fuzzCheck(job.count <= JobWriter.maxSize && job.starts(with: JobWriter.magic), "job of \(job.count) bytes")
            }
        })
}

enum ExecProcessTarget {
    static let target = FuzzTarget(
        name: "exec-process",
        covers: "ExecSpec.decodeProcess (svm-runtime exec's process.json) → the guest's P frame: within ExecProcess.maximumPayload",
        seeds: { [
            #"{"terminal":false,"user":{"uid":1000,"gid":100,"additionalGids":[4]},"args":["sh","-c","exit 7"],"env":["PATH=/bin","TERM=xterm"],"cwd":"/tmp","noNewPrivileges":true,"capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN"]}}"#,
            #"{"args":["true"]}"#,
        ].map { Array($0.utf8) } },
        run: { bytes in
            guard let process = try? ExecSpec.decodeProcess(json: bytes),
                  let request = try? ExecSpec.request(for: process) else { return }
            let frame = HostFrame.execStart(request).encoded()
            fuzzCheck(frame.count <= ControlFrame.headerSize + ExecProcess.maximumPayload,
                      "a P frame of \(frame.count) bytes")
        })
}

enum IPJSONTarget {
    static let target = FuzzTarget(
        name: "ip-json",
        covers: "NamespaceInterface.find (`ip -j addr` / `ip -4 -j route` of the engine's namespace): what it finds makes a valid N frame",
        seeds: {
            let link = #"{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"mtu":65536,"link_type":"loopback","address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},{"ifindex":2,"ifname":"eth0","flags":["BROADCAST","UP"],"mtu":1500,"link_type":"ether","address":"6A:3B:11:22:33:44","addr_info":[{"family":"inet","local":"10.88.0.7","prefixlen":16},{"family":"inet6","local":"fe80::1","prefixlen":64}]}"#
            let routes = #"[{"dst":"default","gateway":"10.88.0.1","dev":"eth0","flags":[]},{"dst":"10.88.0.0/16","dev":"eth0","flags":[]}]"#
            return [Array("[\(link)]".utf8) + [0] + Array(routes.utf8), Array("[\(link)]".utf8) + [0] + Array("[]".utf8)]
        },
        run: { bytes in
            // Addresses, a NUL, routes.
            let split = bytes.firstIndex(of: 0) ?? bytes.count
            let addresses = Array(bytes[..<split]), routes = Array(bytes[min(split + 1, bytes.count)...])
            guard let interface = try? NamespaceInterface.find(addresses: addresses, routes: routes, exclude: ["svmtap0"]) else {
                return
            }
            fuzzCheck(interface.name != "svmtap0", "chose svm's own TAP")
            let network = interface.guestNetwork
            fuzzCheck(network.isValid, "found \(interface), which makes an invalid guest network \(network)")
            fuzzCheck(network.mac[0] & 1 == 0, "a multicast MAC \(interface.mac)")
            fuzzCheck(HostFrame.network(network).encoded().count == ControlFrame.headerSize + 19, "N frame size")
        })
}
