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
        for _ in 0..<16 {
            characters.append(alphabet[Int(generator.next(upperBound: UInt8(32)))])
        }
        return prefix + String(characters)
    }

    public static func task() -> String { make(prefix: "task_") }
    public static func message() -> String { make(prefix: "msg_") }
}
