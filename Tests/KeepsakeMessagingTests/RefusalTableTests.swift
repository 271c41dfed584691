import Foundation
import Testing

/// docs/PROTOCOL.md §11 lists every refusal with the test that produces it.
/// These checks keep the table honest: each row's test exists and names the
/// row's error, every relay code of the OpenAPI document has a row, and so does
/// every way a receiver refuses an envelope or a history answer.
@Suite struct RefusalTableTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Row {
        let number: String
        /// The HTTP status, for the relay's refusals.
        let status: Int?
        /// The error as the test writes it; `…` stands for a value that varies.
        let error: String
        let suite: String
        let test: String
    }

    static func rows() throws -> [Row] {
        let text = try String(contentsOf: root.appendingPathComponent("docs/PROTOCOL.md"), encoding: .utf8)
        let section = try #require(text.range(of: "## 11. Refusals")).upperBound
        return text[section...].split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| #") }.map { line in
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let error = cells[3].split(separator: "`", omittingEmptySubsequences: false)[1]
            let test = cells[4].trimmingCharacters(in: CharacterSet(charactersIn: "`")).split(separator: ".")
            return Row(number: cells[0], status: Int(cells[3].prefix(3)), error: String(error), suite: String(test[0]), test: String(test[1]))
        }
    }

    /// Every test function's body (from its `func` to the next `@Test`), by name, across the test sources.
    static func testBodies() throws -> [String: String] {
        var bodies: [String: String] = [:]
        let tests = root.appendingPathComponent("Tests")
        for case let file as URL in FileManager.default.enumerator(at: tests, includingPropertiesForKeys: nil)! where file.pathExtension == "swift" {
            let source = try String(contentsOf: file, encoding: .utf8)
            for chunk in source.components(separatedBy: "@Test").dropFirst() {
                guard let name = chunk.range(of: "func ").map({ chunk[$0.upperBound...].prefix { $0 != "(" } }) else { continue }
                bodies[String(name)] = chunk
            }
        }
        return bodies
    }

    @Test func everyRowsTestProducesItsError() throws {
        let rows = try Self.rows()
        #expect(rows.count > 70)
        #expect(rows.map(\.number) == (1...rows.count).map(String.init), "rows are numbered in order")
        let bodies = try Self.testBodies()
        for row in rows {
            guard let body = bodies[row.test] else {
                Issue.record("row \(row.number): no test named \(row.test)")
                continue
            }
            let parts = row.error.components(separatedBy: "…").filter { !$0.isEmpty }
            #expect(parts.allSatisfy(body.contains), "row \(row.number): \(row.test) never mentions \(row.error)")
        }
    }

    @Test func everyRelayCodeAndEveryRejectionHasARow() throws {
        let covered = Set(try Self.rows().map { $0.error.components(separatedBy: "(")[0] })
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.root.appendingPathComponent("docs/relay-openapi.json")))
        let codes = try #require(((((((document as? [String: Any])?["components"] as? [String: Any])?["schemas"] as? [String: Any])?["Error"]
            as? [String: Any])?["properties"] as? [String: Any])?["error"] as? [String: Any]).flatMap {
                (($0["properties"] as? [String: Any])?["code"] as? [String: Any])?["enum"] as? [String] })
        let notRefusals: Set = ["internal", "bad_request"]
        #expect(Set(codes).subtracting(notRefusals).subtracting(covered).isEmpty,
                "relay codes without a row: \(Set(codes).subtracting(notRefusals).subtracting(covered).sorted())")
        let answered = Set(try Self.rows().filter { $0.status != nil }.map(\.error))
        #expect(answered.subtracting(codes).isEmpty, "codes the table lists but the OpenAPI document does not: \(answered.subtracting(codes).sorted())")

        func cases(of type: String, in file: String) throws -> Set<String> {
            let source = try String(contentsOf: Self.root.appendingPathComponent(file), encoding: .utf8)
            let start = try #require(source.range(of: "public enum \(type)")).upperBound
            let end = try #require(source[start...].range(of: "\n}\n")).lowerBound
            return Set(source[start..<end].split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("    case ") else { return nil }
                return String(line.dropFirst(9).prefix { $0.isLetter })
            })
        }
        let rejections = try cases(of: "EnvelopeRejection", in: "Sources/KeepsakeMessaging/MessagingError.swift")
        #expect(rejections.count > 10 && rejections.subtracting(covered).isEmpty, "rejections without a row: \(rejections.subtracting(covered).sorted())")
        // Errors of this store's own actions (nothing to ask, an upload that failed) refuse nothing received.
        let ownActions: Set = ["noOtherInstallations", "upload"]
        let history = try cases(of: "HistorySyncError", in: "Sources/KeepsakeMessaging/History.swift").subtracting(ownActions)
        #expect(history.count > 5 && history.subtracting(covered).isEmpty, "history failures without a row: \(history.subtracting(covered).sorted())")
    }
}
