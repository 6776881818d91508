import Foundation
import Testing
@testable import VeoRelay

/// Budgets and usage (`UsageLedger`, and the checks and counts intake, ends and cancels make in the
/// task queue's transactions). The same expectations on SQLite and on PostgreSQL.
@Suite("Usage ledger conformance", .stopsWhatItStarts)
struct UsageLedgerConformanceTests {
    /// 2026-01-15T23:59:59Z: one second before a UTC midnight.
    static let lateOnJanuary15 = Date(timeIntervalSince1970: 1_768_521_599)

    /// Each limit, alone, under 64 concurrent intakes spread over two stores on one database (two
    /// relays): exactly the limit is admitted, every other intake is refused naming that limit. The
    /// cases run one at a time: each opens two connection pools, and the suite shares one server.
    /// The 64 intakes take turns on the client's budget row, so on a loaded machine the last waits
    /// for all the others: the stores get a deadline that measures exactness, not the machine's speed
    /// (a CI run beside the whole suite passed 5 s).
    @Test(.serialized, arguments: TestStores.all, [
        ("per_day=5", BudgetLimit.perDay), ("per_month=5", .perMonth), ("video_seconds_per_day=40", .videoSecondsPerDay),
        ("video_seconds_per_month=40", .videoSecondsPerMonth), ("in_flight=5", .inFlight),
    ])
    func eachLimitAdmitsExactlyUpToItAcrossTwoRelays(store kind: TestStores.Kind, budget: (text: String, limit: BudgetLimit)) async throws {
        let location = try await kind.freshLocation()
        let fixture = try await StoreFixture(kind, at: location, deadline: TestStores.deadline)
        let second = try await StoreLocation.open(location, logger: TestLog.logger, deadline: TestStores.deadline)
        defer { fixture.store.close(); second.close() }
        #expect(try await fixture.store.setBudget(try ClientBudget(parsing: budget.text), clientID: fixture.client.id))
        let stores = [fixture.store, second]
        let tasks = try (0..<64).map { try fixture.task("race \($0)", due: 0) } // 8 s each: 40 s is 5 tasks
        let outcomes = try await withThrowingTaskGroup(of: InsertOutcome.self) { group in
            for (index, task) in tasks.enumerated() {
                group.addTask { try await stores[index % 2].insert(task, idempotency: nil) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let left = outcomes.compactMap { if case .created(let remaining) = $0 { remaining[budget.limit] } else { nil } }
        let cost = budget.limit.cost(ofSeconds: 8)
        #expect(left.sorted() == (0..<5).map { $0 * cost }, "five admitted, each told what was left after it")
        let refusals = outcomes.compactMap { if case .overBudget(let refusal) = $0 { refusal } else { nil } }
        #expect(refusals.count == 59)
        #expect(refusals.allSatisfy { $0.limit == budget.limit && $0.maximum == 5 * cost })
        let stored = try await fixture.store.tasks(TaskQuery(scope: .client(fixture.client.id), limit: 100))
        #expect(stored.count == 5, "refused intakes wrote nothing")
        let usage = try await fixture.store.usage(.client(fixture.client.id), from: "2000-01-01", through: "2100-01-01")
        #expect(usage.totals == UsageCounts(generations: 5, videoSeconds: 40))
    }

    /// A batch is checked task by task in its order, each seeing the ones before it.
    @Test(arguments: TestStores.all)
    func aBatchIsCheckedInOrder(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        _ = try await fixture.store.setBudget(ClientBudget([.perDay: 2]), clientID: fixture.client.id)
        var other = try fixture.task("another client", due: 0)
        other.clientID = "client-without-budget"
        let batch = try (0..<3).map { TaskInsertion(try fixture.task("batch \($0)", due: 0), idempotency: nil) } + [TaskInsertion(other, idempotency: nil)]
        let outcomes = try await fixture.store.insert(batch)
        #expect(outcomes.prefix(2) == [.created(remaining: [.perDay: 1]), .created(remaining: [.perDay: 0])])
        guard case .overBudget(let refusal) = outcomes[2] else { Issue.record("the third is over budget: \(outcomes[2])"); return }
        #expect(refusal.limit == .perDay)
        #expect(outcomes[3] == .created, "another client's task in the same batch is not held back")
        let usage = try await fixture.store.usage(.allClients, from: "2000-01-01", through: "2100-01-01")
        #expect(usage.byClient.map(\.counts.generations) == [2, 1])
    }

    /// An idempotent replay is answered with its task even when the budget is spent, and is not
    /// counted; a refused request leaves no key behind, so it is admitted once the budget allows.
    @Test(arguments: TestStores.all)
    func replaysAreFreeAndRefusalsLeaveNoKey(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        let store = fixture.store
        _ = try await store.setBudget(ClientBudget([.perDay: 1]), clientID: fixture.client.id)
        let first = try fixture.task("first", due: 0)
        let key = IdempotencyKey(key: "k-1", fingerprint: "f-1")
        #expect(try await store.insert(first, idempotency: key) == .created(remaining: [.perDay: 0]))
        #expect(try await store.insert(try fixture.task("first again", due: 0), idempotency: key) == .replayed(taskID: first.id))
        let refusedKey = IdempotencyKey(key: "k-2", fingerprint: "f-2")
        guard case .overBudget = try await store.insert(try fixture.task("second", due: 0), idempotency: refusedKey) else {
            Issue.record("the second is over budget"); return
        }
        #expect(try await store.usage(.client(fixture.client.id), from: "2000-01-01", through: "2100-01-01").totals.generations == 1)
        _ = try await store.setBudget(ClientBudget([.perDay: 2]), clientID: fixture.client.id)
        let second = try fixture.task("second, later", due: 0)
        #expect(try await store.insert(second, idempotency: refusedKey) == .created(remaining: [.perDay: 0]), "the refused key was not kept")
    }

    /// Days and months are UTC: a day's limit frees up at midnight, a month's at the first.
    @Test(arguments: TestStores.all)
    func daysAndMonthsRollOverAtUTCMidnight(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        let store = fixture.store
        func insert(at date: Date) async throws -> InsertOutcome {
            var task = try fixture.task("at \(date)", due: 0)
            task.createdAt = date
            return try await store.insert(task, idempotency: nil)
        }
        let midnight = Self.lateOnJanuary15.addingTimeInterval(1)
        _ = try await store.setBudget(ClientBudget([.perDay: 1]), clientID: fixture.client.id)
        #expect(try await insert(at: Self.lateOnJanuary15) == .created(remaining: [.perDay: 0]))
        #expect(try await insert(at: Self.lateOnJanuary15) == .overBudget(BudgetRefusal(limit: .perDay, maximum: 1, resetsAt: midnight)))
        #expect(try await insert(at: midnight) == .created(remaining: [.perDay: 0]), "a new UTC day")

        let endOfJanuary = midnight.addingTimeInterval(16 * 86_400 - 1) // 2026-01-31T23:59:59Z
        let february = endOfJanuary.addingTimeInterval(1)
        _ = try await store.setBudget(ClientBudget([.perMonth: 3]), clientID: fixture.client.id)
        #expect(try await insert(at: endOfJanuary) == .created(remaining: [.perMonth: 0]), "January's two count")
        #expect(try await insert(at: endOfJanuary) == .overBudget(BudgetRefusal(limit: .perMonth, maximum: 3, resetsAt: february)))
        #expect(try await insert(at: february) == .created(remaining: [.perMonth: 2]), "a new UTC month")

        let days = try await store.usage(.client(fixture.client.id), from: "2026-01-01", through: "2026-02-28").map(\.day)
        #expect(days == ["2026-01-15", "2026-01-16", "2026-01-31", "2026-02-01"])
    }

    /// A task cancelled before submission gives its share back; the in-flight cap frees up as tasks end.
    @Test(arguments: TestStores.all)
    func cancelAndEndsGiveTheirShareBack(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        let store = fixture.store
        let cancellation = TaskCancellation(store: store, clock: FixedClock(now: fixture.t0))
        _ = try await store.setBudget(ClientBudget([.perDay: 1, .inFlight: 1]), clientID: fixture.client.id)
        let first = try fixture.task("first", due: 0)
        #expect(try await store.insert(first, idempotency: nil) == .created(remaining: [.perDay: 0, .inFlight: 0]))
        guard case .overBudget = try await store.insert(try fixture.task("refused", due: 0), idempotency: nil) else {
            Issue.record("over budget while the first counts"); return
        }
        #expect(try await cancellation.cancel(taskID: first.id, scope: .allClients) == .cancelled)
        #expect(try await store.insert(try fixture.task("after the cancel", due: 0), idempotency: nil) == .created(remaining: [.perDay: 0, .inFlight: 0]))

        _ = try await store.setBudget(ClientBudget([.inFlight: 1]), clientID: fixture.client.id)
        guard case .overBudget(let refusal) = try await store.insert(try fixture.task("in flight", due: 0), idempotency: nil) else {
            Issue.record("one task in flight already"); return
        }
        #expect(refusal == BudgetRefusal(limit: .inFlight, maximum: 1, resetsAt: nil))
        _ = try await store.setBudget(.unlimited, clientID: fixture.client.id)
        // The helper's submission claim may take either queued task: one of them ends, the other stays queued.
        let succeeded = try await fixture.finishedTask("ends")
        _ = try await store.setBudget(ClientBudget([.inFlight: 2]), clientID: fixture.client.id)
        #expect(try await store.insert(try fixture.task("after the end", due: 0), idempotency: nil) == .created(remaining: [.inFlight: 0]),
                "the ended task no longer counts; the one queued still does")
        #expect(try await store.task(id: succeeded, scope: .allClients)?.state == .succeeded)
    }

    /// The aggregate follows every outcome, per client, day and model; reads are scoped to the client.
    @Test(arguments: TestStores.all)
    func theAggregateCountsEveryOutcome(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        let store = fixture.store
        _ = try await fixture.finishedTask("succeeds")
        let poller = fixture.lease("test/poller/1", until: 60)
        var failing = try await fixture.runningTask("fails", lease: poller)
        let type = failing.fail(.upstreamFailed, message: "no", at: fixture.t0)
        try await TaskTransitions(store: store, clock: FixedClock(now: fixture.t0), dispatcherWake: WakeSignal()).save(failing, lease: poller, announcing: type)
        var quality = try fixture.task("quality, 4 s", due: 0)
        quality.request.model = .quality
        quality.request.duration = 4
        _ = try await store.insert(quality, idempotency: nil)
        _ = try await TaskCancellation(store: store, clock: FixedClock(now: fixture.t0)).cancel(taskID: quality.id, scope: .allClients)
        var foreign = try fixture.task("another client's", due: 0)
        foreign.clientID = "client-2"
        _ = try await store.insert(foreign, idempotency: nil)

        let day = UsagePeriod.day(of: fixture.t0)
        let own = try await store.usage(.client(fixture.client.id), from: day, through: day)
        #expect(own == [
            UsageRecord(clientID: fixture.client.id, day: day, model: "veo3.1-fast-official",
                        counts: UsageCounts(generations: 2, videoSeconds: 16, succeeded: 1, failed: 1)),
            UsageRecord(clientID: fixture.client.id, day: day, model: "veo3.1-quality-official", counts: UsageCounts(cancelled: 1)),
        ])
        #expect(try await store.usage(.allClients, from: day, through: day).count == 3)
        #expect(try await store.resubmit(taskID: failing.id, now: fixture.t0))
        #expect(try await store.usage(.client(fixture.client.id), from: day, through: day).totals == UsageCounts(generations: 2, videoSeconds: 16, succeeded: 1, cancelled: 1),
                "a resubmitted task is in flight again, no longer failed")
        let standing = try #require(try await store.budgetStanding(clientID: fixture.client.id, at: fixture.t0))
        #expect(standing.use.generationsToday == 2 && standing.use.inFlight == 1)
        #expect(try await store.budgetStanding(clientID: "nobody", at: fixture.t0) == nil)
        #expect(try await store.setBudget(ClientBudget([.perMonth: 9]), clientID: "nobody") == false)
        #expect(try await store.setBudget(ClientBudget([.perMonth: 9]), clientID: fixture.client.id))
        #expect(try await store.clients().first?.budget == ClientBudget([.perMonth: 9]))
    }

    /// A client the relay creates gets the configured default; an existing one keeps its own.
    @Test(arguments: TestStores.all)
    func newClientsGetTheDefaultBudget(store kind: TestStores.Kind) async throws {
        let fixture = try await StoreFixture(kind)
        defer { fixture.store.close() }
        let budget = ClientBudget([.perDay: 7])
        let other = Client(id: "client-2", name: "two", signingSecret: fixture.client.signingSecret)
        try await fixture.store.upsertClient(other, keyHash: "hash-2", now: fixture.t0, budget: budget)
        try await fixture.store.upsertClient(fixture.client, keyHash: "hash-1", now: fixture.t0, budget: budget)
        #expect(try await fixture.store.clients().map(\.budget) == [.unlimited, budget])
    }
}
