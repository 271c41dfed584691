/// A stream of wake-ups merged from a source of news and an optional ticker,
/// for loops that re-read state whenever something may have changed. Wake-ups
/// that pile up while the loop works collapse into one.
struct Wakeups: ~Copyable {
    let stream: AsyncStream<Void>
    private let forwarder: Task<Void, Never>
    private let ticker: Task<Void, Never>?

    /// Wakes on every element of `news` and, with `every`, at that interval too.
    init<News: Sendable>(on news: AsyncStream<News>, every interval: Duration?) {
        let (stream, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.stream = stream
        forwarder = Task { for await _ in news { wake.yield() } }
        ticker = interval.map { interval in
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    wake.yield()
                }
            }
        }
        wake.yield()
    }

    deinit {
        forwarder.cancel()
        ticker?.cancel()
    }
}
