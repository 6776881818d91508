import Foundation
import Hummingbird

/// `/console/dead-letters`: deliveries that used up their retries, each with Replay.
struct DeadLettersPage: Sendable {
    let store: any Outbox
    let pages: ConsolePages

    func addRoutes(to console: RouterGroup<ConsoleRequestContext>) {
        console.get("dead-letters", use: list)
    }

    @Sendable func list(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let signedIn = try context.signedIn
        let records = try await store.deliveries(scope: .allClients, state: .failed, limit: 200)
        return pages.page("Dead letters", "deadletters", DeadLetterView(rows: records.map { DeadLetterRow($0, csrf: signedIn.csrf) }),
                          signedIn: signedIn)
    }
}

struct DeadLetterView {
    var rows: [DeadLetterRow]
}

struct DeadLetterRow {
    var eventID, taskID, type, last, destination, url, csrf: String
    var attempts: Int

    init(_ record: DeliveryRecord, csrf: String) {
        eventID = record.eventID
        taskID = record.taskID ?? ""
        type = record.type
        last = record.lastStatusCode.map { "HTTP \($0)" } ?? record.lastError ?? ""
        destination = record.key.target.description
        url = record.url
        self.csrf = csrf
        attempts = record.attempts
    }
}
