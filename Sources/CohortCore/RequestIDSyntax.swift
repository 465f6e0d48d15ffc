/// What a `Cohort-Request-Id` must look like for a node to record the write it names:
/// 16...64 token characters (`A-Z a-z 0-9 - _`). The balancers pass a client's id on only
/// if it passes; otherwise they send their own, so that a non-idempotent request they
/// retry is always one a node recognises.
public enum RequestIDSyntax {
    public static let lengths = 16...64

    public static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        lengths.contains(bytes.count) && bytes.allSatisfy(SessionID.isTokenByte)
    }
}
