import CohortCore
import CohortMembership

extension MembershipSimulation {
    /// Packets in flight, a binary min-heap ordered by delivery time, then by send order
    /// (so equal latencies keep FIFO order and runs are deterministic).
    struct PacketQueue {
        struct Flight {
            var deliverAt: Instant
            var sender: Int
            var address: Address
            var packet: Membership.Packet
            var serial: UInt64 = 0
        }

        private var heap: [Flight] = []
        private var nextSerial: UInt64 = 0

        var first: Flight? { heap.first }
        var count: Int { heap.count }

        mutating func insert(_ flight: Flight) {
            var flight = flight
            flight.serial = nextSerial
            nextSerial += 1
            heap.append(flight)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard Self.before(heap[child], heap[parent]) else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        }

        mutating func removeFirst() {
            guard !heap.isEmpty else { return }
            heap.swapAt(0, heap.count - 1)
            heap.removeLast()
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < heap.count && Self.before(heap[left], heap[smallest]) { smallest = left }
                if right < heap.count && Self.before(heap[right], heap[smallest]) { smallest = right }
                guard smallest != parent else { return }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }

        private static func before(_ lhs: Flight, _ rhs: Flight) -> Bool {
            lhs.deliverAt != rhs.deliverAt ? lhs.deliverAt < rhs.deliverAt : lhs.serial < rhs.serial
        }
    }
}
