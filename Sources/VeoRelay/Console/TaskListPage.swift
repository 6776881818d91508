import Foundation
import Hummingbird

/// `/console/tasks`: every client's tasks, newest first, by state, client and prompt, a page at a time.
struct TaskListPage: Sendable {
    let store: any TaskQueue & Outbox & ClientDirectory
    let pages: ConsolePages
    static let pageSize = 50

    func addRoutes(to console: RouterGroup<ConsoleRequestContext>) {
        console.get("tasks", use: list)
    }

    @Sendable func list(_ request: Request, context: ConsoleRequestContext) async throws -> Response {
        let parameters = request.uri.queryParameters
        let state = parameters.get("state").flatMap(TaskState.init(rawValue:))
        let client = parameters.get("client").flatMap { $0.isEmpty ? nil : $0 }
        let search = parameters.get("q").map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        let before = parameters.get("before").flatMap(Self.cursor(parsing:))
        let tasks = try await store.tasks(TaskQuery(state: state, scope: client.map(ClientScope.client) ?? .allClients, search: search,
                                                    before: before, limit: Self.pageSize))
        let deliveries = try await store.deliveryStates(taskIDs: tasks.map(\.id))
        var older: String?
        if tasks.count == Self.pageSize, let last = tasks.last {
            var query = [URLQueryItem(name: "before", value: "\(last.createdAt.timeIntervalSince1970)_\(last.id)")]
            if let state { query.append(URLQueryItem(name: "state", value: state.rawValue)) }
            if let client { query.append(URLQueryItem(name: "client", value: client)) }
            if let search { query.append(URLQueryItem(name: "q", value: search)) }
            var components = URLComponents()
            components.path = "/console/tasks"
            components.queryItems = query
            older = components.string
        }
        let names = Dictionary(try await store.clients().map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let clients = names.sorted { $0.value < $1.value }.map { ClientChoice(id: $0.key, name: $0.value, selected: $0.key == client) }
        let view = TaskListView(states: TaskState.allCases.map { .init(name: $0.rawValue, selected: $0 == state) }, clients: clients,
                                search: search ?? "", rows: tasks.map { TaskRow($0, delivery: deliveries[$0.id], clientName: names[$0.clientID]) },
                                older: older)
        return pages.page("Tasks", "tasks", view, signedIn: try context.signedIn)
    }

    static func cursor(parsing text: String) -> TaskCursor? {
        let parts = text.split(separator: "_", maxSplits: 1)
        guard parts.count == 2, let seconds = Double(parts[0]) else { return nil }
        return TaskCursor(createdAt: Date(timeIntervalSince1970: seconds), id: String(parts[1]))
    }
}

struct TaskListView {
    struct StateOption {
        var name: String
        var selected: Bool
    }

    var states: [StateOption]
    var clients: [ClientChoice]
    var search: String
    var rows: [TaskRow]
    var older: String?
}

struct TaskRow {
    var id, state, delivery, clientID, clientName, model, prompt, created: String

    /// `delivery`: the state of the task's latest webhook, if it has one.
    init(_ task: RelayTask, delivery: DeliveryState?, clientName: String?) {
        id = task.id
        state = task.state.rawValue
        self.delivery = delivery?.rawValue ?? (task.callbackURL == nil ? "stream only" : "—")
        clientID = task.clientID
        self.clientName = clientName ?? task.clientID
        model = task.request.model.rawValue
        prompt = task.request.prompt.count > 80 ? task.request.prompt.prefix(80) + "…" : task.request.prompt
        created = ConsolePages.time(task.createdAt)
    }
}
