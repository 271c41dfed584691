import ArgumentParser
import AsyncHTTPClient
import Foundation
import Keepsake
import KeepsakeCrypto
import KeepsakeRelayClient
import KeepsakeWire
import NIOCore
import Synchronization

struct BenchRelay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Load a relay from this process: publish envelopes concurrently, read them back, check each arrived once.",
        discussion: """
        Without --relay, starts `keepsake serve` as child processes on loopback, each with a \
        temporary data folder, so the load always comes from another process: one relay on \
        SQLite by default, or --instances relays sharing the PostgreSQL database --database names. \
        Publishes go to the relays in turn; one topic is followed, and every topic read back, \
        through the first relay, so with several relays these see what the others stored. \
        Reports publish throughput and latency percentiles next to the floor of the same run \
        (GET /v1/health at the same concurrency: HTTP and the server without storage), \
        read-back throughput, follow (server-sent events) delivery latency, and lost or \
        duplicated envelopes (exit status 2 when any). Bounded by --envelopes and --time-limit.
        """)

    @Option(help: ArgumentHelp("A relay to load; repeat it for relays that share one database (default: start them).", valueName: "url"))
    var relay: [String] = []
    @Option(help: ArgumentHelp("Start the relays on this PostgreSQL database instead of SQLite (the run's topics are left in it).",
                               valueName: "postgres://user[:password]@host[:port]/database"))
    var database: String?
    @Option(help: "Relays to start, all on --database (1 to 16; more than one needs --database).", transform: bounded(1...16))
    var instances = 1
    @Option(help: "Envelopes to publish (1 to 100000000).", transform: bounded(1...100_000_000)) var envelopes = 20_000
    @Option(help: "Inbox topics to spread them over (1 to 100000).", transform: bounded(1...100_000)) var topics = 50
    @Option(help: "Requests in flight at once (1 to 1024).", transform: bounded(1...1024)) var concurrency = 16
    @Option(help: "Ciphertext bytes per envelope (1 to 200000, under the relay's default body limit).", transform: bounded(1...200_000))
    var size = 512
    @Option(help: "Stop publishing after this many seconds (0.1 to 86400).", transform: boundedSeconds(0.1...86_400)) var timeLimit = 120.0
    @OptionGroup var output: OutputFormat

    func validate() throws {
        if !relay.isEmpty, database != nil || instances != 1 {
            throw ValidationError("--relay loads relays already running; --database and --instances are for the relays this command starts")
        }
        if instances > 1, database == nil { throw ValidationError("several relays share their data through --database postgres://…") }
    }

    func run() async throws {
        let workspace = try relay.isEmpty ? BenchWorkspace(name: "relay") : nil
        defer { workspace?.close() }
        let options = database.map { ["--database", $0] } ?? []
        let urls = try workspace.map { workspace in try (0..<instances).map { _ in try workspace.startRelay(options) } } ?? relay
        let bases = try urls.map { text in
            guard let url = URL(string: text), url.scheme != nil else { throw ValidationError("'\(text)' is not a URL") }
            return url
        }
        try await withLoadClient(concurrency: concurrency) { http in
            try await measure(bases.map { RelayClient(baseURL: $0, client: http) }, http: http, bases: bases)
        }
    }

    private func measure(_ relays: [RelayClient], http: HTTPClient, bases: [URL]) async throws {
        let client = relays[0]
        func say(_ line: String) { if !output.json { print(line); flushOutput() } }
        let inboxes = (0..<topics).map { _ in Topic.message(installation: Random.bytes(16)) }
        let payload = Data(Random.bytes(size))
        // Each envelope's send time is the run's start plus its index in nanoseconds: a time the relay accepts, and the index.
        let started = UInt64(Date().timeIntervalSince1970 * 1e9)
        // Envelopes are made as they are sent, so memory stays bounded by what is in flight.
        @Sendable func envelope(_ index: Int) throws -> [UInt8] {
            try Envelope.with {
                $0.header = Data(try EnvelopeHeader.with { $0.sentNs = started + UInt64(index) }.wireBytes())
                $0.ciphertext = payload
            }.wireBytes()
        }
        let envelopeBytes = try envelope(0).count
        let backend = relay.isEmpty ? (database == nil ? "SQLite" : "PostgreSQL") : "as running"
        say("relays \(bases.map(\.absoluteString).joined(separator: ", ")) (\(backend)): "
            + "\(envelopes) envelopes of \(envelopeBytes) bytes on \(topics) topics, \(concurrency) in flight")

        let healths = bases.map { HTTPClientRequest(url: $0.absoluteString + "/v1/health") }
        let floor = try await runLoad(count: envelopes, concurrency: concurrency, limit: timeLimit) { index in
            let response = try await http.execute(healths[index % healths.count], timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 16)
        }
        say("floor  GET /v1/health   \(floor.summary)")

        // Follow one topic while publishing: delivery latency from publish to event.
        let followed = inboxes[0]
        let sentAt = Mutex<[UInt64: ContinuousClock.Instant]>([:])
        let expectedFollowed = (envelopes + topics - 1) / topics
        let watcher = Task {
            var delays: [Duration] = []
            for try await item in client.watch(followed, after: 0) {
                let index = (try? EnvelopeHeader(serializedBytes: Envelope(serializedBytes: item.data).header))?.sentNs.subtractingReportingOverflow(started).partialValue
                if let index, let start = sentAt.withLock({ $0.removeValue(forKey: index) }) { delays.append(ContinuousClock.now - start) }
                if delays.count == expectedFollowed { break }
            }
            return delays
        }
        let published = try await runLoad(count: envelopes, concurrency: concurrency, limit: timeLimit) { index in
            let topic = inboxes[index % topics]
            if topic == followed { sentAt.withLock { $0[UInt64(index)] = .now } }
            _ = try await relays[index % relays.count].publish(try envelope(index), to: topic)
        }
        say("publish POST /v1/topics   \(published.summary)  (\(String(format: "%.2f", published.rate / floor.rate))x the floor's rate)")

        let readStart = ContinuousClock.now
        var seen: [[UInt8]: Int] = [:]
        for topic in inboxes {
            var cursor: Int64 = 0
            while true {
                let page = try await client.items(on: topic, after: cursor, limit: 1_000)
                for item in page.items { seen[Blake2b.hash(item.data), default: 0] += 1 }
                cursor = page.next
                if page.items.count < 1_000 { break }
            }
        }
        let readSeconds = (ContinuousClock.now - readStart).seconds
        let expected = Set(try (0..<published.completed).map { Blake2b.hash(try envelope($0)) })
        let lost = expected.subtracting(seen.keys).count
        let duplicated = seen.values.filter { $0 > 1 }.count
        let foreign = Set(seen.keys).subtracting(expected).count
        say("read back \(seen.count) envelopes in \(String(format: "%.2f", readSeconds)) s (\(Int(Double(seen.count) / readSeconds))/s): "
            + "\(lost) lost, \(duplicated) duplicated, \(foreign) unexpected")

        let delays = try await withThrowingTaskGroup(of: [Duration]?.self) { group in
            group.addTask { try await watcher.value }
            group.addTask { try await Task.sleep(for: .seconds(10)); return nil }
            let first = try await group.next() ?? nil
            group.cancelAll()
            watcher.cancel()
            return first ?? []
        }
        let follow = Percentiles(delays)
        say("follow  server-sent events  \(delays.count) delivered, latency \(follow.summary)")

        if output.json {
            printJSON([
                "relays": bases.count, "backend": backend, "envelopes": envelopes, "published": published.completed,
                "topics": topics, "concurrency": concurrency,
                "envelopeBytes": envelopeBytes, "lost": lost, "duplicated": duplicated, "unexpected": foreign,
                "publishPerSecond": published.rate, "publishLatencyMs": published.latency.json,
                "floorPerSecond": floor.rate, "floorLatencyMs": floor.latency.json,
                "readBackPerSecond": Double(seen.count) / readSeconds, "followDelivered": delays.count, "followLatencyMs": follow.json,
            ])
        }
        if lost > 0 || duplicated > 0 || foreign > 0 { throw ExitCode(2) }
    }

}

/// What a load run did: how many requests completed, in how long, with which latencies.
struct Load {
    let completed: Int
    let seconds: Double
    let latency: Percentiles
    var rate: Double { Double(completed) / seconds }
    var summary: String { "\(completed) in \(String(format: "%.2f", seconds)) s = \(Int(rate))/s, latency \(latency.summary)" }
}

/// Runs `request(index)` for indices 0..<count with `concurrency` in flight, until done or `limit` seconds pass.
func runLoad(count: Int, concurrency: Int, limit: Double, _ request: @escaping @Sendable (Int) async throws -> Void) async throws -> Load {
    let next = Counter()
    let start = ContinuousClock.now
    let deadline = start + .milliseconds(Int64(limit * 1000))
    let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
        for _ in 0..<concurrency {
            group.addTask {
                var mine: [Duration] = []
                while ContinuousClock.now < deadline {
                    let index = next.take()
                    guard index < count else { break }
                    let began = ContinuousClock.now
                    try await request(index)
                    mine.append(ContinuousClock.now - began)
                }
                return mine
            }
        }
        return try await group.reduce(into: []) { $0 += $1 }
    }
    return Load(completed: latencies.count, seconds: (ContinuousClock.now - start).seconds, latency: Percentiles(latencies))
}

/// Runs `body` with an HTTP client that keeps `concurrency` connections open
/// and fails at once when the server is gone, then shuts the client down.
func withLoadClient(concurrency: Int, _ body: (HTTPClient) async throws -> Void) async throws {
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = concurrency + 2
    configuration.connectionPool.retryConnectionEstablishment = false
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    do {
        try await body(http)
        try await http.shutdown()
    } catch {
        try? await http.shutdown()
        throw error
    }
}

/// Hands out 0, 1, 2… to concurrent tasks.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    func take() -> Int { value.add(1, ordering: .relaxed).oldValue }
}

/// Latency percentiles in milliseconds.
struct Percentiles {
    let sorted: [Double]

    init(_ durations: [Duration]) { sorted = durations.map { $0.seconds * 1000 }.sorted() }

    func at(_ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }

    var summary: String {
        String(format: "p50 %.2f ms, p90 %.2f, p99 %.2f, max %.2f", at(0.5), at(0.9), at(0.99), sorted.last ?? 0)
    }

    var json: [String: Double] { ["p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": sorted.last ?? 0] }
}
