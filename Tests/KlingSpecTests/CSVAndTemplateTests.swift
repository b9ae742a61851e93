import Testing

@testable import KlingSpec

/// The two small parsers expansion stands on: strict CSV with positions, and `{name}` placeholders.
@Suite("CSV rows and placeholders")
struct CSVAndTemplateTests {
    @Test("RFC 4180: quotes, doubled quotes, commas and newlines inside quotes, CRLF, a BOM, blank lines skipped")
    func csv() throws {
        let text = "\u{FEFF}a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n\r\n\"two\r\nlines\",é\n"
        let table = try CSVTable.parse(Array(text.utf8)).get()
        #expect(table.header.map(\.text) == ["a", "b"])
        #expect(table.records.map { $0.map(\.text) } == [["x, y", "say \"hi\""], ["two\r\nlines", "é"]])
        #expect(table.records[1][0].line == 4 && table.records[1][1].line == 5 && table.records[1][1].column == 8)
        #expect(table.records[0][1].column == 8)
    }

    @Test("a last line without a newline, and empty values")
    func ends() throws {
        let table = try CSVTable.parse(Array("a,b,c\n,,\n1,\"\",3".utf8)).get()
        #expect(table.records.map { $0.map(\.text) } == [["", "", ""], ["1", "", "3"]])
    }

    @Test("broken files name the line and column", arguments: [
        ("a,b\n1\n", 2, 1, "this row has 1 value; the header names 2 columns"),
        ("a,b\n1,2,3\n", 2, 1, "this row has 3 values"),
        ("a\n\"x\"y\n", 2, 4, "text after a closing quote"),
        ("a\nx\"y\n", 2, 2, "a quote inside an unquoted value"),
        ("a\n1\n\"open\n", 3, 1, "never closes"),
        ("", 1, 1, "has no header row"),
        ("\n\n", 1, 1, "has no header row"),
    ])
    func broken(text: String, line: Int, column: Int, message: String) {
        guard case .failure(let problem) = CSVTable.parse(Array(text.utf8)) else {
            Issue.record("\(text.debugDescription) was accepted")
            return
        }
        #expect(problem.line == line && problem.column == column, "\(problem)")
        #expect(problem.message.contains(message), "\(problem.message)")
    }

    @Test("bytes that are not UTF-8 are found where they are")
    func notUTF8() {
        guard case .failure(let problem) = CSVTable.parse(Array("a\nok\n".utf8) + [0x63, 0xE9, 0x0A]) else {
            Issue.record("Latin-1 was accepted")
            return
        }
        #expect(problem.line == 3 && problem.column == 2)
        #expect(problem.message.contains("0xE9"))
    }

    @Test("placeholders, escapes and braces that are only text")
    func placeholders() {
        let values = ["mood": "storm", "take": "2", "ratio": "16:9"]
        #expect(TemplateText("at {mood}, take {take}").render(values) == "at storm, take 2")
        #expect(TemplateText("{{mood}} {mood}}}").render(values) == "{mood} storm}")
        #expect(TemplateText("{ mood } {1x} {} {").render(values) == "{ mood } {1x} {} {")
        #expect(TemplateText("t-{ratio}").render(values, escape: JobNameRule.sanitize) == "t-16-9")
        #expect(TemplateText("a {b} {c_2}").names == ["b", "c_2"])
        #expect(TemplateText("plain").isPlain && !TemplateText("{{").isPlain && TemplateText("{ x }").isPlain)
        #expect(TemplateText("{unknown}").render(values) == "{unknown}")
    }

    @Test("numbers as JSON writes them, found without a regex")
    func numberShapes() {
        for text in ["0", "-0", "12", "-1.5e3", "1E+2", "0.25", "123456789012345678"] { #expect(JSONNumberShape(text) != nil, "\(text)") }
        for text in ["010", "1.", ".5", "1e", "+1", "0x1F", "1:30", "--1", "", "-", "1.2.3", "12a"] { #expect(JSONNumberShape(text) == nil, "\(text)") }
        #expect(JSONNumberShape("12") == .integer && JSONNumberShape("1.0") == .fraction && JSONNumberShape("1e3") == .fraction)
    }
}
