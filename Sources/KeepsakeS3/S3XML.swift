/// Reads the few elements Keepsake needs from S3's XML answers (`UploadId`,
/// `Key`, `Code`, `IsTruncated`...): the text between `<Name>` and the next
/// `</Name>`, entities decoded. S3 answers are flat and regular, so this is
/// all the XML they need; anything else (a truncated or hostile answer)
/// yields fewer values, never a trap. Fuzzed as `s3-xml`.
public enum S3XML {
    /// The contents of every `Name` element, in order, entities decoded.
    public static func values(_ name: String, in xml: [UInt8]) -> [String] {
        elements(name, in: xml).map { decodeEntities($0) }
    }

    /// The first `Name` element's text, or nil.
    public static func value(_ name: String, in xml: [UInt8]) -> String? {
        elements(name, in: xml).first.map { decodeEntities($0) }
    }

    /// The raw (undecoded) contents of every `Name` element, for elements
    /// that hold others (`Contents`, `Upload`).
    public static func elements(_ name: String, in xml: [UInt8]) -> [ArraySlice<UInt8>] {
        let open = Array("<\(name)".utf8), close = Array("</\(name)>".utf8)
        var found: [ArraySlice<UInt8>] = []
        var index = xml.startIndex
        while let start = firstIndex(of: open, in: xml, from: index) {
            var cursor = start + open.count
            // `<Name>`, `<Name/>` or `<Name attributes>`; `<NameLonger>` is another element.
            guard cursor < xml.endIndex, [UInt8(ascii: ">"), UInt8(ascii: " "), UInt8(ascii: "/")].contains(xml[cursor]) else {
                index = cursor
                continue
            }
            while cursor < xml.endIndex, xml[cursor] != UInt8(ascii: ">") { cursor += 1 }
            guard cursor < xml.endIndex else { break }
            let contentStart = cursor + 1
            if xml[cursor - 1] == UInt8(ascii: "/") {
                found.append([])
                index = contentStart
                continue
            }
            guard let end = firstIndex(of: close, in: xml, from: contentStart) else { break }
            found.append(xml[contentStart..<end])
            index = end + close.count
        }
        return found
    }

    private static func firstIndex(of needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index + needle.count <= bytes.count {
            if bytes[index] == needle[0], bytes[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    /// Text with `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` and `&#…;` references
    /// decoded; an unknown or broken reference stays as it is.
    static func decodeEntities(_ bytes: some Collection<UInt8>) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.contains("&") else { return text }
        var out = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let tail = rest[amp...]
            guard let semicolon = tail.prefix(12).firstIndex(of: ";") else {
                out += "&"
                rest = rest[rest.index(after: amp)...]
                continue
            }
            let name = tail[tail.index(after: tail.startIndex)..<semicolon]
            if let decoded = entity(name) {
                out.unicodeScalars.append(decoded)
                rest = rest[rest.index(after: semicolon)...]
            } else {
                out += "&"
                rest = rest[rest.index(after: amp)...]
            }
        }
        return out + rest
    }

    private static func entity(_ name: Substring) -> Unicode.Scalar? {
        switch name {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "apos": return "'"
        default:
            let number: UInt32?
            if name.hasPrefix("#x") || name.hasPrefix("#X") {
                number = UInt32(name.dropFirst(2), radix: 16)
            } else if name.hasPrefix("#") {
                number = UInt32(name.dropFirst(), radix: 10)
            } else {
                number = nil
            }
            return number.flatMap(Unicode.Scalar.init)
        }
    }
}
