import ArgumentParser
import Keepsake

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create an empty store (or check an existing one).")

    @OptionGroup var location: StoreLocation

    func run() throws {
        let store = try location.open(create: true)
        print("store \(store.directory.path)")
        print("log   \(store.logID)")
        print("cursor \(try store.cursor())")
    }
}

struct Rebuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop the projections and rebuild them by replaying the whole log.",
        discussion: """
            A damaged projection database (not a database, corrupt pages, a directory in its place) \
            is moved aside as projections.sqlite.damaged-<time>, kept for inspection, and the \
            projections are rebuilt from the log into a new file.
            """)

    @OptionGroup var location: StoreLocation

    func run() throws {
        let started = ContinuousClock.now
        let store = try location.open(damagedProjections: .setAside)
        if let aside = store.setAsideProjections {
            print("the projection database was damaged: moved it aside to \(aside.path)")
        } else {
            try store.rebuildProjections()
        }
        let elapsed = ContinuousClock.now - started
        print("rebuilt projections up to \(try store.cursor()) in \(elapsed.formatted(.units(allowed: [.seconds, .milliseconds])))")
    }
}

struct CursorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cursor",
        abstract: "Print the store's cursor (its log position) and version vector.",
        discussion: "The cursor's text form can be passed to `keepsake log --from`.")

    @OptionGroup var location: StoreLocation
    @OptionGroup var format: OutputFormat

    func run() throws {
        let store = try location.open()
        let cursor = try store.cursor()
        let vector = try store.versionVector()
        if format.json {
            printJSON(["cursor": cursor.description, "log": store.logID.hex,
                       "vector": Dictionary(uniqueKeysWithValues: vector.entries.map { ($0.key.hex, $0.value) })])
        } else {
            print("cursor \(cursor)")
            print("vector \(vector)")
        }
    }
}
