import Foundation
import Testing

/// The documentation keeps up with the code: every setting `serve` accepts is described.
@Suite("Documentation", .stopsWhatItStarts)
struct DocumentationTests {
    static let root = Repository.root

    /// Each flag and each environment variable `veo-relay serve --help` names has its place in
    /// docs/configuration.md (written there in backticks).
    @Test func everySettingOfServeIsInTheConfigurationDocument() async throws {
        let help = try RelayProcess(["serve", "--help"])
        #expect(try await help.exitStatus() == 0)
        let text = help.standardOutput
        let flags = Set(text.matches(of: /--[a-z][a-z0-9-]+/).map { String($0.output) }).subtracting(["--help"])
        let variables = Set(text.matches(of: /\b(?:VEO_RELAY_[A-Z0-9_]+|LOG_LEVEL|OTEL_[A-Z0-9_]+)\b/).map { String($0.output) })
        #expect(flags.count >= 40 && variables.count >= 40, "read \(flags.count) flags and \(variables.count) variables from --help")
        let document = try String(contentsOf: Self.root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        let missing = flags.union(variables).filter { !document.contains("`\($0)`") }.sorted()
        #expect(missing.isEmpty, "docs/configuration.md lacks \(missing)")

        // And each variable's default there is the one --help gives (a switch's is "off"; none is "—").
        let flowing = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        var checked = 0
        for match in flowing.matches(of: /\[env: (VEO_RELAY_[A-Z0-9_]+)([^\]]*)\](?: \(default: ([^)]*)\))?/) {
            let (variable, note, given) = (String(match.output.1), String(match.output.2), match.output.3.map(String.init))
            guard let row = document.split(separator: "\n").first(where: { $0.hasPrefix("| `\(variable)` |") }) else { continue }
            let columns = row.split(separator: "|", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
            let documented = columns[3].replacingOccurrences(of: "`", with: "")
            let expected = given ?? (note.contains("=true") ? "off" : "—")
            #expect(documented == expected, "\(variable): docs/configuration.md says \(documented), --help \(expected)")
            checked += 1
        }
        #expect(checked >= 40, "compared \(checked) defaults")
    }
}
