// Split virtqueues and the devices' requests on them (Sources/Virtio), over the driver of
// Tests/VirtioTests/FuzzTests.swift (FuzzScenario.swift, NetFuzzScenario.swift): the
// input bytes decide queue geometry, descriptor and indirect tables, avail ring contents,
// block request headers and virtio-net headers and packets.
import Memory
import Virtio

enum VirtqueueTarget {
    static let memory = try! GuestMemory(size: FuzzScenario.memorySize, hugePages: false)
    static let disk = InMemoryDisk(sectors: 64)

    static let target = FuzzTarget(
        name: "virtqueue",
        covers: "Virtqueue chains (descriptors, indirect tables, rings), virtio-blk requests, virtio-net headers both ways: no used entry outside the queue, nothing sent the features forbid",
        seeds: { [[UInt8](repeating: 0, count: 64), (0..<512).map { UInt8(truncatingIfNeeded: $0 &* 37) }] },
        run: { bytes in
            var source = ByteSource(bytes)
            let problems = FuzzScenario.run(&source, memory: memory, disk: disk)
            fuzzCheck(problems.isEmpty, "virtqueue invariant broken: \(problems)")
        })
}
