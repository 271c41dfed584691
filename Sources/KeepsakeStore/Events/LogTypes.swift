import KeepsakeLog

// The log's vocabulary, re-exported so `import Keepsake` is all an app needs.
// (Declaring them here also makes `Cursor` mean the log cursor, not GRDB's.)
/// A position in one log.
public typealias Cursor = KeepsakeLog.Cursor
/// Why a cursor's text form is refused.
public typealias CursorParseError = KeepsakeLog.CursorParseError
/// A log's random identity.
public typealias LogID = KeepsakeLog.LogID
/// An event's identity across stores: origin log and origin sequence.
public typealias EventID = KeepsakeLog.EventID
/// For each origin log, the highest origin sequence held.
public typealias VersionVector = KeepsakeLog.VersionVector
/// How hard the log works to keep appends across a power loss.
public typealias Durability = KeepsakeLog.Durability
/// What happened to one appended or imported event: stored, or already held.
public typealias AppendOutcome = KeepsakeLog.AppendOutcome
/// Errors of the event log.
public typealias LogError = KeepsakeLog.LogError
/// An event as the log stores it (for tools and benchmarks).
public typealias RecordDraft = KeepsakeLog.RecordDraft

/// The cipher sealed payloads use.
public typealias SealingCipher = KeepsakeLog.SealingCipher
