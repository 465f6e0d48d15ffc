import CohortCore
import CohortMembership
import CohortWire
import Logging
import NIOCore

extension ClusterNode {
    /// Carries out a membership ``Membership/Directive/verify(_:)``: dials the node with
    /// TLS (``MemberVerification``) and admits it, or rejects it (counted in
    /// ``NodeCounters/admissionsRefused`` and logged at most once per host per 10 s).
    /// Only one check per node runs at a time (``NodeState/verifying``).
    func verifyMember(_ id: NodeID) {
        guard let tls = configuration.tls else {
            // Admission is required only with TLS (see `bind`), so this cannot happen.
            finishVerification(of: id, .failure(VerificationFailure("no TLS configured to verify with")))
            return
        }
        let myself = self.id
        let codec = self.codec
        MemberVerification.run(
            id, tls: tls, eventLoop: eventLoopGroup.next(), hello: helloFrame(for: id),
            checkAnswer: { frame in Self.checkHelloAnswer(frame, from: id, to: myself, codec: codec) },
            completion: { [weak self] result in self?.finishVerification(of: id, result) }
        )
    }

    /// Why `frame` is not the hello of exactly `expected`, sealed for process `myself`
    /// (`nil` if it is).
    static func checkHelloAnswer(_ frame: ByteBuffer, from expected: NodeID, to myself: NodeID, codec: FrameCodec) -> (any Error)? {
        do {
            let (envelope, message) = try codec.decodeFrame(frame)
            guard case .hello(let answered) = message else { return VerificationFailure("the answer is not a hello") }
            guard envelope.receiver == myself.uid, envelope.sender == answered.uid else {
                return VerificationFailure("the answer's envelope does not match (sender \(envelope.sender), receiver \(envelope.receiver))")
            }
            guard answered == expected else {
                return VerificationFailure("\(answered)#\(answered.uid) answered at the address of \(expected)#\(expected.uid)")
            }
            return nil
        } catch {
            return error
        }
    }

    private func finishVerification(of id: NodeID, _ result: Result<Void, any Error>) {
        input { state, now, effects in
            state.verifying.remove(id)
            guard !state.stopping else { return }
            switch result {
            case .success:
                state.absorb(state.membership.admit(id, now: now), now: now, makeLink: makeLink, into: &effects)
            case .failure:
                state.membership.rejectAdmission(id, now: now)
                state.counters.admissionsRefused += 1
            }
        }
        switch result {
        case .success:
            logger.debug("member verified", metadata: ["cluster.member": "\(id)", "cluster.member.uid": "\(id.uid)"])
        case .failure(let error):
            metrics.admissionsRefused.increment()
            let now = self.now
            let key = "\(id.address.host) admission"
            guard let suppressed = rejectionLog.withLockedValue({ $0.admit(key, now: now, quietUntil: now + .seconds(10)) }) else { return }
            logger.warning("refused membership: the node could not be verified", metadata: [
                "cluster.member": "\(id)", "cluster.member.uid": "\(id.uid)", "error": "\(error)",
                "cluster.rejections.unlogged": "\(suppressed)",
            ])
        }
    }
}
