import Control
import OCI

/// `features`: what this runtime supports (runtime-spec features.md); dockerd may ask.
enum FeaturesCommand {
    static let command = RuntimeCommand.Command(name: "features", summary: "print the supported features as JSON", run: run)

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        let options = (MountOptions.setting.keys.sorted() + MountOptions.clearing.keys.sorted() + MountOptions.ignored.sorted())
        let value: ControlValue = .object([
            "ociVersionMin": .string("1.0.0"),
            "ociVersionMax": .string("1.1.0"),
            "hooks": .array(ContainerPlan.hostHookNames.sorted().map { .string($0) }),
            "mountOptions": .array(options.map { .string($0) }),
            "linux": .object([
                "namespaces": .array(["cgroup", "ipc", "mount", "network", "pid", "uts"].map { .string($0) }),
                "capabilities": .array(CapabilityNames.all.map { .string($0) }),
                "cgroup": .object(["v1": .bool(false), "v2": .bool(false), "systemd": .bool(false)]),
                "seccomp": .object(["enabled": .bool(false)]),
                "apparmor": .object(["enabled": .bool(false)]),
                "selinux": .object(["enabled": .bool(false)]),
            ]),
            "annotations": .object([
                "io.svm.runtime": .string("each container runs in an svm microVM with its own kernel"),
                ContainerPlan.memoryAnnotation: .string("VM memory, e.g. 512M (default 256M, or linux.resources.memory.limit)"),
                ContainerPlan.cpusAnnotation: .string("vCPUs (default 1, or linux.resources.cpu quota/period)"),
            ]),
        ])
        print(String(decoding: JSONText.encode(value), as: UTF8.self))
        return 0
    }
}
