import Benchmark
import Foundation
import Keepsake
import KeepsakeBenchSupport
import KeepsakeLog

// Each benchmark handles one million events (or all message rows of them), or
// a thousand single commits, per iteration and reports "per second": events,
// rows or commits per second. Floors do the same work straight on LMDB and
// SQLite, in the same run on the same machine.

/// Items per second, recorded as a custom metric.
let perSecond = BenchmarkMetric.custom("per second", polarity: .prefersLarger, useScalingFactor: false)

/// Measures `body`, which handles `count` items, and records the rate.
func measure(_ benchmark: Benchmark, count: Int, _ body: () throws -> Void) rethrows {
    let started = ContinuousClock.now
    benchmark.startMeasurement()
    try body()
    benchmark.stopMeasurement()
    let elapsed = ContinuousClock.now - started
    benchmark.measurement(perSecond, Int(Double(count) / (elapsed / .seconds(1))))
}

let benchmarks: @Sendable () -> Void = {
    let large = Benchmark.Configuration(
        metrics: [.wallClock, .peakMemoryResident, perSecond],
        timeUnits: .milliseconds, warmupIterations: 0, maxDuration: .seconds(120), maxIterations: 3)
    let singles = Benchmark.Configuration(
        metrics: [.wallClock, perSecond], timeUnits: .milliseconds, warmupIterations: 0,
        maxDuration: .seconds(60), maxIterations: 3)

    Benchmark("floor: raw LMDB append, MDB_APPEND, 10k per txn", configuration: large) { benchmark in
        let dir = Scratch()
        let env = try LMDBEnvironment(path: dir.path, mapSize: 8 << 30, maxDatabases: 2)
        let db = try env.openDatabase("events")
        let records = Fixture.shared.drafts
        try measure(benchmark, count: records.count) {
            for start in stride(from: 0, to: records.count, by: 10_000) {
                try env.write { txn in
                    for sequence in start..<min(start + 10_000, records.count) {
                        var key = UInt64(sequence + 1).bigEndian
                        try withUnsafeBytes(of: &key) { k in
                            try records[sequence].payload.withUnsafeBytes { v in try txn.put(k, v, in: db, append: true) }
                        }
                    }
                }
            }
        }
    }

    Benchmark("log: batched append, 10k per txn", configuration: large) { benchmark in
        let dir = Scratch()
        let log = try EventLog(directory: dir.path, options: LogOptions(initialMapSize: 8 << 30))
        let drafts = Fixture.shared.drafts
        try measure(benchmark, count: drafts.count) {
            for start in stride(from: 0, to: drafts.count, by: 10_000) {
                try log.append(Array(drafts[start..<min(start + 10_000, drafts.count)]))
            }
        }
    }

    Benchmark("log: batched append, same events unsealed and without subjects", configuration: large) { benchmark in
        let dir = Scratch()
        let log = try EventLog(directory: dir.path, options: LogOptions(initialMapSize: 8 << 30))
        let drafts = Fixture.shared.drafts.map { draft in
            var bare = draft
            bare.sealed = false
            bare.subject = nil
            bare.effect = .none
            return bare
        }
        try measure(benchmark, count: drafts.count) {
            for start in stride(from: 0, to: drafts.count, by: 10_000) {
                try log.append(Array(drafts[start..<min(start + 10_000, drafts.count)]))
            }
        }
    }

    Benchmark("floor: raw LMDB single durable commits", configuration: singles) { benchmark in
        let dir = Scratch()
        let env = try LMDBEnvironment(path: dir.path, mapSize: 1 << 30, maxDatabases: 2)
        let db = try env.openDatabase("events")
        let records = Fixture.shared.drafts
        try measure(benchmark, count: 1_000) {
            for sequence in 0..<1_000 {
                try env.write { txn in
                    var key = UInt64(sequence + 1).bigEndian
                    try withUnsafeBytes(of: &key) { k in
                        try records[sequence].payload.withUnsafeBytes { v in try txn.put(k, v, in: db, append: true) }
                    }
                }
            }
        }
    }

    Benchmark("log: single-event durable appends", configuration: singles) { benchmark in
        let dir = Scratch()
        let log = try EventLog(directory: dir.path)
        let drafts = Fixture.shared.drafts
        try measure(benchmark, count: 1_000) {
            for index in 0..<1_000 { try log.append([drafts[index]]) }
        }
    }

    Benchmark("store: single-event durable appends (log + projections)", configuration: singles) { benchmark in
        let dir = Scratch()
        let store = try Store.open(at: URL(fileURLWithPath: dir.path + "/store"), options: StoreOptions(extensions: [MessagingExtension()]))
        let events = Fixture.shared.events
        try measure(benchmark, count: 1_000) {
            for index in 0..<1_000 { try store.append(contentsOf: [events[index]]) }
        }
    }

    Benchmark("floor: raw SQLite prepared inserts of the message rows (rows/s)", configuration: large) { benchmark in
        let dir = Scratch()
        let rows = Fixture.shared.messageRows
        try measure(benchmark, count: rows.count) {
            _ = try Floors.sqliteInserts(rows, at: dir.path + "/floor.sqlite")
        }
    }

    Benchmark("projection: incremental catch-up of 1M logged events (message rows/s)", configuration: large) { benchmark in
        let dir = Scratch()
        try Fixture.shared.copyLoggedStore(to: dir.path + "/store")
        try measure(benchmark, count: Fixture.shared.messageRows.count) {
            _ = try Store.open(at: URL(fileURLWithPath: dir.path + "/store"), options: StoreOptions(extensions: [MessagingExtension()]))
        }
    }

    Benchmark("projection: rebuild from 1M logged events (message rows/s)", configuration: large) { benchmark in
        let dir = Scratch()
        try Fixture.shared.copyLoggedStore(to: dir.path + "/store")
        let store = try Store.open(at: URL(fileURLWithPath: dir.path + "/store"), options: StoreOptions(extensions: [MessagingExtension()]))
        try measure(benchmark, count: Fixture.shared.messageRows.count) {
            try store.rebuildProjections()
        }
    }
}

/// One million generated events, prepared once and shared by the benchmarks.
final class Fixture: @unchecked Sendable {
    static let shared = Fixture()
    static let eventCount = 1_000_000

    let events: [EventDraft]
    let drafts: [RecordDraft]
    let messageRows: [MessagePost]
    private let loggedStore: Scratch

    private init() {
        var generator = HistoryGenerator(.init(messages: Self.eventCount, conversations: 2_000, seed: 42))
        events = generator.next(batch: Self.eventCount)
        drafts = try! Floors.records(of: events)
        messageRows = Floors.messageRows(of: events.map(\.content))
        loggedStore = Scratch()
        let store = try! Store.open(at: URL(fileURLWithPath: loggedStore.path + "/store"),
                                    options: StoreOptions(durability: .unsafeNoSync, extensions: [MessagingExtension()]))
        for start in stride(from: 0, to: events.count, by: 20_000) {
            try! store.append(contentsOf: Array(events[start..<min(start + 20_000, events.count)]))
        }
    }

    /// Copies a store holding the million events, without its projections.
    func copyLoggedStore(to path: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
        for item in ["STORE", "log"] {
            try fm.copyItem(atPath: loggedStore.path + "/store/" + item, toPath: path + "/" + item)
        }
    }
}

/// A temporary directory, removed when released.
final class Scratch: @unchecked Sendable {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("keepsake-bench-\(UUID().uuidString)").path

    init() { try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
