/// A secret held in memory: its description never shows the value, so reflection, string
/// interpolation and debug logging of any struct holding one cannot leak it.
public struct Redacted: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String

    public init(_ value: String) {
        self.value = value
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
