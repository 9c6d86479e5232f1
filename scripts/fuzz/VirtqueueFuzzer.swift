// libFuzzer entry point over the same driver as Tests/VirtioTests/FuzzTests.swift: the
// input bytes decide queue geometry, descriptor tables, indirect tables, avail ring
// contents and block request headers (see FuzzScenario.swift). Built and run by
// scripts/fuzz-virtqueue; not part of the Swift package.
import Memory
import Virtio

let fuzzMemory = try! GuestMemory(size: FuzzScenario.memorySize)
let fuzzDisk = InMemoryDisk(sectors: 64)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVirtqueue(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    var source = ByteSource(bytes)
    let problems = FuzzScenario.run(&source, memory: fuzzMemory, disk: fuzzDisk)
    if !problems.isEmpty {
        fatalError("virtqueue invariant broken: \(problems)")
    }
    return 0
}
