import Hummingbird
import KeepsakeWire
import Prometheus

/// The relay's counters and latencies, served at `GET /metrics` in Prometheus's
/// text format (docs/RELAY-STORAGE.md lists them).
///
/// Each relay has a registry of its own rather than the process-wide
/// `MetricsSystem`, so relays sharing a process (tests, an app embedding one)
/// count apart. Labels take only bounded values: route patterns, not paths.
final class RelayMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let uploads: Counter
    private let uploadBytes: Counter
    private let storageFailures: Counter

    /// Declares the unlabelled counters, so they read 0 before anything happens.
    init() {
        uploads = registry.makeCounter(descriptor: Self.describe("backup_uploads", unit: "total", "Backup files stored."))
        uploadBytes = registry.makeCounter(descriptor: Self.describe("backup_upload_bytes", unit: "total", "Bytes of backup files stored."))
        storageFailures = registry.makeCounter(
            descriptor: Self.describe("storage_failures", unit: "total", "Requests answered 503 because the database or the backup file store failed."))
    }

    /// Buckets for request latencies, from a fast read to a large upload.
    private static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
    ]

    /// Counts a request answered with `status` on `route` (a pattern from `Relay.routes`, or "unmatched"),
    /// and records how long the relay took to answer it (to the response head: a stream's body is not timed).
    func answered(method: String, route: String, status: Int, after duration: Duration) {
        registry.makeCounter(
            descriptor: Self.describe("requests", unit: "total", "HTTP requests answered, by method, route pattern and status."),
            labels: [("method", method), ("route", route), ("status", String(status))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: Self.describe("request_duration", unit: "seconds", "Time to answer a request's head, by method and route pattern."),
            labels: [("method", method), ("route", route)], buckets: Self.latencyBuckets
        ).record(duration)
    }

    /// Counts an envelope or bundle stored on a topic of `topic`'s kind.
    func published(on topic: Topic) {
        registry.makeCounter(
            descriptor: Self.describe("publishes", unit: "total", "Items stored on topics, by topic kind."),
            labels: [("kind", String(topic.name.prefix { $0 != "-" }))]
        ).increment()
    }

    /// Counts a completed backup upload of `bytes`.
    func uploaded(bytes: Int) {
        uploads.increment()
        uploadBytes.increment(by: Int64(bytes))
    }

    /// Counts a request that failed because the database or the blob store did (answered 503 `storage_unavailable`).
    func storageFailed() { storageFailures.increment() }

    /// The exposition text (`text/plain; version=0.0.4`).
    func exposition() -> [UInt8] { registry.emitToBuffer() }

    private static func describe(_ name: String, unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "keepsake", subsystem: "relay", metricName: name, unitName: unit, helpText: help)
    }
}

/// Counts and times every request by its route pattern and final status,
/// including refusals that `JSONErrors` turns into errors.
struct RequestMetrics<Context: RequestContext>: RouterMiddleware {
    let metrics: RelayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let route = Relay.route(matching: request.uri.path).map { "/" + $0.joined(separator: "/") } ?? "unmatched"
        let status: Int
        defer { metrics.answered(method: request.method.rawValue, route: route, status: status, after: .now - started) }
        do {
            let response = try await next(request, context)
            status = response.status.code
            return response
        } catch {
            status = (error as? any HTTPResponseError)?.status.code ?? 500
            throw error
        }
    }
}
