import KeepsakeLog

// The log's vocabulary, re-exported so `import Keepsake` is all an app needs.
// (Declaring them here also makes `Cursor` mean the log cursor, not GRDB's.)
public typealias Cursor = KeepsakeLog.Cursor
public typealias CursorParseError = KeepsakeLog.CursorParseError
public typealias LogID = KeepsakeLog.LogID
public typealias EventID = KeepsakeLog.EventID
public typealias VersionVector = KeepsakeLog.VersionVector
public typealias Durability = KeepsakeLog.Durability
public typealias AppendOutcome = KeepsakeLog.AppendOutcome
public typealias LogError = KeepsakeLog.LogError
public typealias RecordDraft = KeepsakeLog.RecordDraft

public typealias SealingCipher = KeepsakeLog.SealingCipher
