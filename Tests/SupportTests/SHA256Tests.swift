import LlavaUHD
import TestSupport
import Testing

/// The test-side SHA-256 against digests from Python's hashlib (FIPS 180-4 vectors and messages
/// around the 55/56/64-byte padding boundaries).
@Suite struct SHA256Tests {
    @Test func matchesHashlib() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex((0..<1000).map { UInt8(($0 * 7 + 3) % 256) })
                == "1e9bc38cbf860b9ec31918b065f9b52476c549a782e0e7990bed8ce3868d2371")
        let boundaries: [(Int, String)] = [
            (55, "463eb28e72f82e0a96c0a4cc53690c571281131f672aa229e0d45ae59b598b59"),
            (56, "da2ae4d6b36748f2a318f23e7ab1dfdf45acdc9d049bd80e59de82a60895f562"),
            (63, "29af2686fd53374a36b0846694cc342177e428d1647515f078784d69cdb9e488"),
            (64, "fdeab9acf3710362bd2658cdc9a29e8f9c757fcf9811603a8c447cd1d9151108"),
            (65, "4bfd2c8b6f1eec7a2afeb48b934ee4b2694182027e6d0fc075074f2fabb31781"),
        ]
        for (n, digest) in boundaries {
            #expect(SHA256.hex((0..<n).map { UInt8($0) }) == digest, "\(n) bytes")
        }
    }
}
