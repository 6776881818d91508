import Foundation
import Hummingbird

/// `/console/clients`: every client with its budget, when it was created, revoked, and when a key
/// rotation ends.
struct ClientsPage: Sendable {
    let store: any ClientDirectory
    let pages: ConsolePages

    func addRoutes(to console: RouterGroup<ConsoleRequestContext>) {
        console.get("clients", use: list)
    }

    @Sendable func list(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let rows = try await store.clients().map {
            ClientRow(id: $0.id, name: $0.name, budget: $0.budget.text, created: ConsolePages.time($0.createdAt),
                      revoked: ConsolePages.time($0.revokedAt), rotationEnds: ConsolePages.time($0.rotationEndsAt))
        }
        return pages.page("Clients", "clients", ClientListView(rows: rows), signedIn: try context.signedIn)
    }
}

struct ClientListView {
    var rows: [ClientRow]
}

struct ClientRow {
    var id, name, budget, created, revoked, rotationEnds: String
}
