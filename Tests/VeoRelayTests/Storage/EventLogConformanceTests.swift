import Foundation
import Testing
@testable import VeoRelay

/// The event log (`EventLog`): every event a transition wrote, webhook or not, in commit order.
/// The same expectations on SQLite and on PostgreSQL, each case on a new empty database.
@Suite("Event log conformance", .stopsWhatItStarts)
struct EventLogConformanceTests {
    @Test(arguments: TestStores.all)
    func streamsReadEveryEventInOrderAndResumeAfterOne(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        let lease = fixture.lease("a/poller/1", until: 60)
        let task = try await fixture.runningTask("streamed", lease: lease)
        let quiet = try await fixture.runningTask("quiet", lease: fixture.lease("a/poller/2", until: 60))
        let events = (1...3).map { n in
            NewEvent(type: .taskProgress, payload: Data(#"{"n":\#(n)}"#.utf8), createdAt: fixture.t0, webhook: n != 2)
        }
        for event in events { try await fixture.store.save(task, lease: lease, keepLease: true, event: event) }

        let all = try await fixture.store.streamEvents(taskID: task.id, after: 0)
        #expect(all.map(\.id) == events.map(\.id), "an unsubscribed event is kept for the stream too")
        #expect(all.map(\.sequence) == [1, 2, 3])
        #expect(all.map(\.payload) == events.map(\.payload))
        #expect(try await fixture.store.streamEvents(taskID: task.id, after: 2).map(\.id) == [events[2].id])
        #expect(try await fixture.store.eventSequence(eventID: events[1].id, taskID: task.id) == 2)
        #expect(try await fixture.store.eventSequence(eventID: events[1].id, taskID: quiet.id) == nil, "an id resumes only its own task")
        #expect(try await fixture.store.latestEventSequences(taskIDs: [task.id, quiet.id, "unknown"]) == [task.id: 3])
        fixture.store.close()
    }
}
