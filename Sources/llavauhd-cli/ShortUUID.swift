/// Random answer ids in the form upstream's eval scripts give them (`shortuuid.uuid()`):
/// 22 characters of the 57-letter alphabet without look-alikes, about 128 random bits.
enum ShortUUID {
    static let alphabet = Array("23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")

    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        var value = UInt128(generator.next() as UInt64) << 64 | UInt128(generator.next() as UInt64)
        var digits: [Character] = []
        for _ in 0..<22 {
            digits.append(alphabet[Int(value % 57)])
            value /= 57
        }
        return String(digits.reversed())
    }
}
