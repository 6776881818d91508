import Foundation

/// Time-ordered, URL-safe identifiers (ULID layout: 48-bit milliseconds + 80 random bits, Crockford
/// base32), so ids sort by creation and never contain the `.` that Standard Webhooks forbids in ids.
public enum Identifier {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    public static func make(prefix: String, at date: Date = Date()) -> String {
        var generator = SystemRandomNumberGenerator()
        let millis = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var characters: [Character] = []
        characters.reserveCapacity(26)
        for shift in stride(from: 45, through: 0, by: -5) {
            characters.append(alphabet[Int((millis >> UInt64(shift)) & 0x1F)])
        }
        // 80 random bits, 5 per character, from two draws (each draw is a system call).
        for var bits in [generator.next() as UInt64, generator.next() as UInt64] {
            for _ in 0..<8 {
                characters.append(alphabet[Int(bits & 0x1F)])
                bits >>= 5
            }
        }
        return prefix + String(characters)
    }

    /// `bytes` random bytes from the system generator, in hex: keys and secrets.
    public static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) }.hexString
    }

    public static func task() -> String { make(prefix: "task_") }
    public static func message() -> String { make(prefix: "msg_") }
}

extension Sequence<UInt8> {
    /// Lower-case hexadecimal, two digits a byte.
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
