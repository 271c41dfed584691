import ArgumentParser
import Foundation
import Keepsake

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the store for damage, changing nothing.",
        discussion: """
            Opens the store as every command does (projections behind the log catch up), then \
            reads the whole log and checks that its sequences are contiguous, every record decodes \
            and its sealed payload authenticates with its key slot, every zeroed key slot belongs to \
            an erased or superseded event, and the indexes agree with the records. Then runs \
            SQLite's integrity check and the search index's, and compares every projection table \
            row by row with a fresh rebuild from the log in a temporary file. Prints each problem \
            and exits with status 1 when there is one; 0 means the store is clean.
            """)

    @OptionGroup var location: StoreLocation
    @OptionGroup var format: OutputFormat

    func run() throws {
        let report: StoreCheck
        do {
            report = try location.open().check()
        } catch let error as KeepsakeError {
            // A store that does not open is the first problem a check reports.
            show(clean: false, counts: [:], problems: [["area": "store", "message": "\(ErrorHint.adding(to: error))"]])
            throw ExitCode.failure
        }
        let counts = [
            "records": report.log.records, "sealed": report.log.sealed, "erased": report.log.erased,
            "projectedUpTo": Int(report.projectedUpTo),
        ]
        show(clean: report.isClean, counts: counts, problems: report.problems.map { ["area": $0.area.rawValue, "message": $0.message] })
        if !report.isClean { throw ExitCode.failure }
    }

    private func show(clean: Bool, counts: [String: Int], problems: [[String: String]]) {
        if format.json {
            var object: [String: Any] = counts
            object["clean"] = clean
            object["problems"] = problems
            printJSON(object)
            return
        }
        if !counts.isEmpty {
            print("log: \(counts["records"]!) records (\(counts["sealed"]!) sealed and authenticated, \(counts["erased"]!) erased); projections at \(counts["projectedUpTo"]!)")
        }
        for problem in problems { print("problem: \(problem["area"]!): \(problem["message"]!)") }
        print(clean ? "the store is clean" : "\(problems.count) problem\(problems.count == 1 ? "" : "s") found")
        if problems.contains(where: { $0["area"] == StoreCheck.Area.projections.rawValue }) {
            print("`keepsake rebuild` rebuilds the projections from the log")
        }
    }
}
