/// The transmit path's parsing: one chain from the driver → one packet for the backend
/// (header and frame, as the driver wrote them), or the reason it is dropped.
enum NetTransmitPacket {
    enum Drop: Error, Equatable {
        /// No frame after the header (or not even a header).
        case tooShort(length: Int)
        /// More than a header and `VirtioNet.maxFrameSize` bytes.
        case tooLong(length: Int)
        /// The chain could not be copied whole (a broken invariant; kept defined all the same).
        case unreadable
        case header(NetHeaderProblem)
    }

    /// The chain's bytes are copied once and only the copy is checked and sent: the driver
    /// may rewrite its buffers meanwhile, but not what was validated.
    static func parse(_ chain: DescriptorChain, negotiated features: UInt64) -> Result<[UInt8], Drop> {
        let length = chain.readableLength
        guard length > VirtioNetHeader.size else { return .failure(.tooShort(length: length)) }
        guard length - VirtioNetHeader.size <= VirtioNet.maxFrameSize else { return .failure(.tooLong(length: length)) }
        guard let packet = try? chain.readAll(), packet.count == length,
              let header = VirtioNetHeader(packet) else { return .failure(.unreadable) }
        if let problem = header.transmitProblem(frameLength: length - VirtioNetHeader.size, negotiated: features) {
            return .failure(.header(problem))
        }
        return .success(packet)
    }
}
