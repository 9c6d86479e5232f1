// swift-tools-version:6.0
// svm: a hosted hypervisor for Linux/x86-64 on KVM. No package dependencies by design:
// the only non-Swift code is the CKVM target, which exists to import <linux/kvm.h>.
import PackageDescription

let package = Package(
    name: "svm",
    products: [
        .executable(name: "svm", targets: ["svm"]),
        .executable(name: "svm-runtime", targets: ["svm-runtime"]),
        .library(name: "Machine", targets: ["Machine"]),
    ],
    targets: [
        // C shim: exact kernel struct layouts and the KVM ioctl numbers as constants.
        .target(name: "CKVM"),
        // Typed wrappers over /dev/kvm ioctls.
        .target(name: "KVM", dependencies: ["CKVM", "Host"]),
        // The single owner of guest RAM; every guest-address access is bounds-checked here.
        .target(name: "Memory", dependencies: ["CKVM"]),
        // Linux boot protocol, PVH, e820, MP table: writes boot structures into guest memory.
        .target(name: "Boot", dependencies: ["Memory", "Host"]),
        // Snapshot files: the manifest, the sparse memory file, the state encoding and the
        // protocol every device that has state implements.
        .target(name: "Snapshot", dependencies: ["CKVM"]),
        // Emulated devices (UART, i8042, CMOS) behind the port-I/O / MMIO bus.
        .target(name: "Devices", dependencies: ["Memory", "Snapshot"]),
        // virtio 1.x: split virtqueues, the virtio-mmio transport and the blk/net/console/rng
        // devices. Transport- and KVM-independent; every guest access goes through GuestMemory.
        .target(name: "Virtio", dependencies: ["Memory", "Host", "Snapshot"]),
        // The host below everything: one error type, whole-buffer fd I/O, threads, the clock,
        // the epoll event loop, eventfd, signals, terminal, Unix sockets.
        .target(name: "Host", dependencies: ["CKVM"]),
        // vhost-user frontend (the socket protocol, the memory table) and the virtio-fs
        // device on it; virtiofsd as the backend's process.
        .target(name: "VhostUser", dependencies: ["Virtio", "Memory", "Host", "CKVM"]),
        // Completes instructions that a nested KVM's emulator cannot run.
        .target(name: "InstructionFixup"),
        // Builds and runs a VM from a MachineConfig.
        .target(name: "Machine",
                dependencies: ["KVM", "Memory", "Boot", "Devices", "Virtio", "VhostUser", "Host", "InstructionFixup", "CKVM", "Snapshot"]),
        // svm run's pure pieces: newc cpio writer, ELF dependency resolver, guest init protocol.
        .target(name: "Sandbox", dependencies: ["Host"]),
        // The per-VM control socket (JSON lines), the state directory and the bounded
        // console log of managed VMs.
        .target(name: "Control", dependencies: ["Host"]),
        // svm run: packs a program into an initramfs and runs it in a throwaway VM.
        .target(name: "Runner", dependencies: ["Machine", "Sandbox", "Host", "Virtio", "VhostUser"]),
        // Command-line parsing and exit statuses, as a library so it can be unit-tested.
        .target(name: "SVMCommand", dependencies: ["Machine", "Host", "Runner", "Control", "Snapshot"]),
        .executableTarget(name: "svm", dependencies: ["SVMCommand"]),
        // OCI bundles (config.json) turned into guest jobs: pure, unit-tested.
        .target(name: "OCI", dependencies: ["Control", "Sandbox"]),
        // svm-runtime's commands (runc's command line) and the container's VM process.
        .target(name: "RuntimeCommand", dependencies: ["OCI", "Runner", "Control", "Machine", "Host", "Sandbox"]),
        .executableTarget(name: "svm-runtime", dependencies: ["RuntimeCommand", "Runner"]),

        // Helpers the test targets share (a deterministic PRNG for the fuzz-style tests).
        .target(name: "TestSupport", path: "Tests/TestSupport"),

        .testTarget(name: "MemoryTests", dependencies: ["Memory"]),
        .testTarget(name: "SnapshotTests", dependencies: ["Snapshot"]),
        .testTarget(name: "BootTests", dependencies: ["Boot", "Memory", "Host", "TestSupport"]),
        .testTarget(name: "DevicesTests", dependencies: ["Devices", "Memory", "Snapshot"]),
        .testTarget(name: "VirtioTests", dependencies: ["Virtio", "Memory", "Host", "TestSupport", "Snapshot"]),
        .testTarget(name: "InstructionFixupTests", dependencies: ["InstructionFixup", "TestSupport"]),
        .testTarget(name: "MachineTests", dependencies: ["Machine", "KVM", "Memory", "Host"]),
        .testTarget(name: "HostTests", dependencies: ["Host", "CKVM"]),
        .testTarget(name: "VhostUserTests", dependencies: ["VhostUser", "Virtio", "Memory", "Host", "CKVM"]),
        .testTarget(name: "KVMTests", dependencies: ["KVM", "CKVM", "Host"]),
        .testTarget(name: "ControlTests", dependencies: ["Control", "Host", "TestSupport"]),
        .testTarget(name: "SVMCommandTests", dependencies: ["SVMCommand", "Machine", "Runner", "Snapshot"]),
        .testTarget(name: "IntegrationTests", dependencies: []),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox", "Host", "TestSupport"]),
        .testTarget(name: "OCITests", dependencies: ["OCI", "Sandbox", "Control"]),
        .testTarget(name: "RuntimeCommandTests", dependencies: ["RuntimeCommand", "Control", "OCI"]),
        .testTarget(name: "RunnerTests", dependencies: ["Runner", "SVMCommand", "Sandbox", "Machine", "Host"]),
    ]
)
