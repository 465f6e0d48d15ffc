import CohortWire
import Testing

@Suite("ClusterKey: generation and the key file")
struct ClusterKeyTests {
    @Test("fileContents round-trips to the same key")
    func fileRoundTrip() throws {
        let key = ClusterKey.generate()
        let text = key.fileContents
        #expect(text.hasPrefix("cohort-cluster-key-v1 "))
        #expect(text.hasSuffix("\n"))
        #expect(text.utf8.count == "cohort-cluster-key-v1 ".utf8.count + 44 + 1)  // base64 of 32 bytes
        let parsed = try ClusterKey(fileContents: text)
        #expect(parsed == key)
        #expect(parsed.keyID == key.keyID)
        #expect(parsed.fileContents == text)
    }

    @Test("a node that read the key file opens frames sealed by the node that wrote it")
    func sharedKeyFile() throws {
        let writer = ClusterKey.generate()
        let reader = try ClusterKey(fileContents: writer.fileContents)
        let frame = FrameCodec(protection: .sealed(writer)).encode(Fixtures.typicalDelta)
        #expect(try FrameCodec(protection: .sealed(reader)).decode(frame: frame) == Fixtures.typicalDelta)
    }

    @Test("surrounding whitespace is tolerated")
    func whitespace() throws {
        let key = ClusterKey.generate()
        let base64 = String(key.fileContents.split(separator: " ")[1].dropLast())
        for text in ["cohort-cluster-key-v1 \(base64)", "  cohort-cluster-key-v1\t\(base64)\r\n\n", "cohort-cluster-key-v1 \(base64)\n"] {
            #expect(try ClusterKey(fileContents: text) == key)
        }
    }

    @Test("generated keys differ and their IDs are never 0")
    func generated() {
        var keyIDs: Set<UInt8> = []
        let first = ClusterKey.generate()
        for _ in 0..<2_000 {
            let key = ClusterKey.generate()
            #expect(key.keyID != 0)
            #expect(key != first)
            keyIDs.insert(key.keyID)
        }
        #expect(keyIDs.count > 200)  // IDs spread over 1...255
    }

    @Test("the key never shows in descriptions")
    func redacted() {
        let key = ClusterKey.generate()
        let base64 = String(key.fileContents.split(separator: " ")[1].dropLast())
        #expect(!"\(key)".contains(base64))
        #expect(!String(reflecting: key).contains(base64))
        #expect("\(key)".contains("\(key.keyID)"))
    }

    @Test("garbage is rejected", arguments: [
        "",
        "\n",
        "cohort-cluster-key-v1",
        "cohort-cluster-key-v1 ",
        "cohort-cluster-key-v2 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "cohort-cluster-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",  // 31 bytes
        "cohort-cluster-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  // 33 bytes
        "cohort-cluster-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  // no padding
        "cohort-cluster-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!=",
        "cohort-cluster-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= extra",
        "cohort-cluster-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " + String(repeating: " ", count: 2_000),
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIB==\n-----END PRIVATE KEY-----\n",
    ])
    func garbage(text: String) {
        #expect(throws: WireError.invalidKeyFile) { try ClusterKey(fileContents: text) }
    }

    @Test("a valid 32-byte key file is accepted")
    func zeroKey() throws {
        let key = try ClusterKey(fileContents: "cohort-cluster-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
        #expect(key.keyID != 0)
        #expect(key.fileContents == "cohort-cluster-key-v1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
    }
}
