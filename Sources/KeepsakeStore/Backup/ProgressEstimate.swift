import Foundation

/// How far a backup or restore has come since it started, and the time it may
/// still take at the pace so far.
public struct ProgressEstimate: Sendable, Equatable {
    /// The share of the work done, 0 to 1.
    public let fraction: Double
    /// Time since the operation started.
    public let elapsed: Duration

    /// A progress of `done` out of `total` units, `elapsed` after the start.
    init(done: Int, total: Int, elapsed: Duration) {
        fraction = total > 0 ? min(1, max(0, Double(done) / Double(total))) : 1
        self.elapsed = elapsed
    }

    /// The time left at the pace so far; nil until 1% is done (too early to tell).
    public var remaining: Duration? {
        guard fraction >= 0.01 else { return nil }
        return elapsed * ((1 - fraction) / fraction)
    }
}

/// Measures one operation's progress from its start.
struct ProgressClock {
    private let started = ContinuousClock.now
    let total: Int

    func estimate(done: Int) -> ProgressEstimate {
        ProgressEstimate(done: done, total: total, elapsed: ContinuousClock.now - started)
    }
}
