import ArgumentParser
import Foundation
import Keepsake

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the store's events in a canonical form, to compare stores.",
        discussion: """
        --canonical-json writes JSON Lines: a first line naming the format and the elements, \
        then one line per event ordered by event ID, with its ID, kind, time and content (or \
        "erased"/"opaque"; keys and session states never appear). The same events give the \
        same bytes in any store, so a store and one restored from its backup export alike: \
        `diff` them. By default the soft elements (what every backup carries) are exported.
        """)

    @OptionGroup var location: StoreLocation
    @Flag(help: "Write canonical JSON Lines (the one format there is, named so others can follow).") var canonicalJson = false
    @Option(help: ArgumentHelp(
        "Element kinds to export: conversations,messages,contacts,consent,preferences,sessions,identity,unknown-kinds (default: the first five).",
        valueName: "kinds"))
    var only: String?
    @Option(help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file")) var to: String?

    func run() throws {
        guard canonicalJson else { throw ValidationError("choose the output format: --canonical-json") }
        var elements = BackupElements.soft
        if let only {
            guard let chosen = BackupElements(names: only) else { throw ValidationError("unknown element kind in --only \(only)") }
            elements = chosen
        }
        let store = try location.open()
        let handle: FileHandle
        if let to {
            guard FileManager.default.createFile(atPath: to, contents: nil), let file = FileHandle(forWritingAtPath: to) else {
                throw ValidationError("cannot write \(to)")
            }
            handle = file
        } else {
            handle = FileHandle.standardOutput
        }
        defer { if to != nil { try? handle.close() } }
        var buffer = Data()
        try store.exportCanonicalJSON(elements: elements) { line in
            buffer.append(contentsOf: Array(line.utf8))
            buffer.append(0x0A)
            if buffer.count >= 1 << 20 {
                try handle.write(contentsOf: buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        try handle.write(contentsOf: buffer)
    }
}
