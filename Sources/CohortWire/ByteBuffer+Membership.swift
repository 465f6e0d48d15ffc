internal import CohortCore
internal import CohortMembership
internal import NIOCore

// Membership packets (frame type 2); layout in Frame.swift.
//
//   packet  = Member from | u8 kind | kind fields | u32 count | count × Member gossip
//   kind    = 0 ping (u64 sequence) | 1 pingRequest (u64 sequence, NodeID target)
//           | 2 ack (u64 sequence, Member target) | 3 leave ()

extension ByteBuffer {
    private enum MembershipMessageKind: UInt8 {
        case ping = 0
        case pingRequest = 1
        case ack = 2
        case leave = 3
    }

    mutating func readCohortMember() throws(WireError) -> Membership.Member {
        let id = try readCohortNodeID()
        let incarnation = try readCohortInteger(as: UInt64.self)
        let rawStatus = try readCohortInteger(as: UInt8.self)
        guard let status = Membership.Status(rawValue: rawStatus) else {
            throw .malformed("unknown member status \(rawStatus)")
        }
        let rawRole = try readCohortInteger(as: UInt8.self)
        guard let role = Membership.Role(rawValue: rawRole) else {
            throw .malformed("unknown member role \(rawRole)")
        }
        let httpAddress = try readCohortFlag("httpAddress") ? try readCohortAddress() : nil
        return Membership.Member(id: id, incarnation: incarnation, status: status, role: role, httpAddress: httpAddress)
    }

    mutating func writeCohortMember(_ member: Membership.Member) {
        writeCohortNodeID(member.id)
        writeInteger(member.incarnation, endianness: .big)
        writeInteger(member.status.rawValue)
        writeInteger(member.role.rawValue)
        if let httpAddress = member.httpAddress {
            writeCohortFlag(true)
            writeCohortAddress(httpAddress)
        } else {
            writeCohortFlag(false)
        }
    }

    mutating func readCohortMembershipMessage() throws(WireError) -> Membership.Message {
        let rawKind = try readCohortInteger(as: UInt8.self)
        guard let kind = MembershipMessageKind(rawValue: rawKind) else {
            throw .malformed("unknown membership message kind \(rawKind)")
        }
        switch kind {
        case .ping:
            return .ping(sequence: try readCohortInteger(as: UInt64.self))
        case .pingRequest:
            let sequence = try readCohortInteger(as: UInt64.self)
            return .pingRequest(sequence: sequence, target: try readCohortNodeID())
        case .ack:
            let sequence = try readCohortInteger(as: UInt64.self)
            return .ack(sequence: sequence, target: try readCohortMember())
        case .leave:
            return .leave
        }
    }

    mutating func writeCohortMembershipMessage(_ message: Membership.Message) {
        switch message {
        case .ping(let sequence):
            writeInteger(MembershipMessageKind.ping.rawValue)
            writeInteger(sequence, endianness: .big)
        case .pingRequest(let sequence, let target):
            writeInteger(MembershipMessageKind.pingRequest.rawValue)
            writeInteger(sequence, endianness: .big)
            writeCohortNodeID(target)
        case .ack(let sequence, let target):
            writeInteger(MembershipMessageKind.ack.rawValue)
            writeInteger(sequence, endianness: .big)
            writeCohortMember(target)
        case .leave:
            writeInteger(MembershipMessageKind.leave.rawValue)
        }
    }

    mutating func readCohortMembershipPacket(limits: WireLimits) throws(WireError) -> Membership.Packet {
        let from = try readCohortMember()
        let message = try readCohortMembershipMessage()
        let count = try readCohortCount(limit: limits.maxGossip, minimumElementSize: MinimumSize.member, "gossip")
        var gossip: [Membership.Member] = []
        gossip.reserveCapacity(count)
        for _ in 0..<count {
            gossip.append(try readCohortMember())
        }
        return Membership.Packet(from: from, message: message, gossip: gossip)
    }

    mutating func writeCohortMembershipPacket(_ packet: Membership.Packet) {
        writeCohortMember(packet.from)
        writeCohortMembershipMessage(packet.message)
        writeCohortCount(packet.gossip.count)
        for member in packet.gossip {
            writeCohortMember(member)
        }
    }
}
