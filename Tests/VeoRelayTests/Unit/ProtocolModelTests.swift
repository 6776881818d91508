import Foundation
import Testing
@testable import VeoRelay

/// The protocol model (`protocol/relay.pml`, checked by spin in the test command) and the Swift state
/// machine read from one table, `TaskStateMachine`: the model's state changes are exactly the rows it
/// says it models, in the same states.
@Suite("Protocol model", .stopsWhatItStarts)
struct ProtocolModelTests {
    static let model = Repository.root.appendingPathComponent("protocol/relay.pml")

    @Test func theModelChangesStateExactlyAsTheTableSays() throws {
        let text = try String(contentsOf: Self.model, encoding: .utf8)
        var modelled: Set<[String]> = []
        for match in text.matches(of: /TRANSITION\((\w+), (\w+)\)/) where match.1 != "from" {
            modelled.insert([String(match.1), String(match.2)])
        }
        let table = Set(TaskStateMachine.all.filter(\.modelled).map { [$0.from.rawValue, $0.to.rawValue] })
        #expect(modelled == table, "in the model only: \(modelled.subtracting(table)); in the table only: \(table.subtracting(modelled))")
        let states = try #require(text.firstMatch(of: /mtype = \{ ([a-z, ]+) \}/)).1.split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(states.allSatisfy { TaskState(rawValue: $0) != nil }, "the model's states are TaskState's: \(states)")
    }

    /// Every move `RelayTask` can make from a state the table lists is in the table; none outside it.
    @Test func theTableHoldsEveryMoveTheStagesMake() throws {
        for transition in TaskStateMachine.all {
            #expect(TaskStateMachine.allows(transition.from, transition.to))
        }
        #expect(!TaskStateMachine.allows(.succeeded, .queued) && !TaskStateMachine.allows(.running, .submitting)
                && !TaskStateMachine.allows(.submitting, .succeeded), "a paid task never goes back to be sent again")
        #expect(TaskStateMachine.all.filter { $0.to == .submitting }.map(\.from) == [.queued], "only a queued task is ever marked")
    }
}
