import Foundation
import Testing

/// The documentation keeps up with the code: every setting `serve` accepts is described.
@Suite("Documentation", .stopsWhatItStarts, .stopsWhatItStarts)
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
    }
}
