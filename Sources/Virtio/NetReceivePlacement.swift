/// One packet from the backend (header already checked, see `VirtioNetHeader.forReceive`)
/// on its way into the driver's receive chains.
///
/// With VIRTIO_NET_F_MRG_RXBUF the packet is spread over as many chains as it needs and
/// num_buffers in its header says how many (virtio 1.x §5.1.6.4). Chains are collected
/// across calls: when the guest runs out of buffers half-way, the ones already taken stay
/// here, unused, until it posts more. Without MRG_RXBUF a packet must fit one chain.
struct NetReceivePlacement {
    enum Progress: Equatable {
        /// In the used ring.
        case delivered
        /// The queue has no more chains; call again once the driver posts some.
        case waitingForBuffers
        /// Cannot be placed: the chains it held went back empty.
        case dropped
    }

    private(set) var packet: [UInt8]
    /// Chains taken for this packet so far, and their writable bytes in total.
    private var chains: [DescriptorChain] = []
    private var room = 0

    /// Chains taken from the ring for this packet and not yet returned.
    var heldChains: Int { chains.count }

    init(packet: [UInt8]) {
        self.packet = packet
    }

    mutating func place(into queue: inout Virtqueue, interrupt: VirtioInterrupt, mergeable: Bool) -> Progress {
        if !mergeable {
            guard let chain = queue.nextRequest(interrupt: interrupt) else { return .waitingForBuffers }
            guard chain.writableLength >= packet.count else {
                queue.addUsed(head: chain.head, length: 0)
                return .dropped
            }
            chains = [chain]
        } else {
            while room < packet.count {
                // All the queue's descriptors are ours and the packet still does not fit
                // (a driver posting tiny buffers): no further chain can come.
                guard chains.count < Int(queue.size) else { return giveBack(&queue) }
                guard let chain = queue.nextRequest(interrupt: interrupt) else { return .waitingForBuffers }
                // The header goes whole into the first chain; later ones just need a byte.
                guard chain.writableLength >= (chains.isEmpty ? VirtioNetHeader.size : 1) else {
                    queue.addUsed(head: chain.head, length: 0)
                    continue
                }
                chains.append(chain)
                room += chain.writableLength
            }
        }
        VirtioNetHeader.setBufferCount(UInt16(chains.count), in: &packet)
        var offset = 0
        for chain in chains {
            let count = min(chain.writableLength, packet.count - offset)
            let written = packet.withUnsafeBytes { source in
                (try? chain.withWritablePieces(offset: 0, count: count) { piece, done in
                    piece.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[(offset + done)...].prefix(piece.count)))
                }) ?? 0
            }
            queue.addUsed(head: chain.head, length: UInt32(written))
            offset += count
        }
        chains = []
        return .delivered
    }

    private mutating func giveBack(_ queue: inout Virtqueue) -> Progress {
        for chain in chains { queue.addUsed(head: chain.head, length: 0) }
        chains = []
        room = 0
        return .dropped
    }
}
