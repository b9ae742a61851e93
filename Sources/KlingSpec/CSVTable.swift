/// A CSV file read strictly (RFC 4180, UTF-8, optional BOM) with the line and column of every value, so a bad row
/// in a `rows:` file is reported where it is. Neither CSV package on the machine (CSV.swift, SwiftCSV) reports
/// positions or refuses a stray quote; both read a broken file leniently, which here would spend money on a
/// prompt cut in the wrong place.
struct CSVTable: Equatable {
    /// One value and where it starts (1-based line and column, columns counted in characters).
    struct Field: Equatable {
        var text: String
        var line: Int
        var column: Int
    }

    /// Why a file is not a CSV table we accept, and where.
    struct Problem: Error, Equatable {
        var message: String
        var line: Int?
        var column: Int?
    }

    /// The first row: the columns' names.
    var header: [Field]
    /// Every other non-blank row, each with exactly as many values as the header.
    var records: [[Field]]

    /// Reads `bytes` as a table; blank lines are skipped, and a row's line is the line it starts on.
    static func parse(_ bytes: [UInt8]) -> Result<CSVTable, Problem> {
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        if let bad = firstInvalidUTF8(body) {
            return .failure(Problem(message: "is not UTF-8 text (byte 0x\(String(bytes[bad.offset], radix: 16, uppercase: true)) at line \(bad.line)); save it as UTF-8 (\"CSV UTF-8\" in a spreadsheet)", line: bad.line, column: bad.column))
        }
        var rows: [[Field]] = []
        do {
            var scanner = CSVScanner(String(decoding: body, as: UTF8.self))
            while let row = try scanner.nextRow() {
                if row.count == 1 && row[0].field.text.isEmpty && !row[0].wasQuoted { continue }
                rows.append(row.map(\.field))
            }
        } catch let problem as Problem {
            return .failure(problem)
        } catch {
            return .failure(Problem(message: "cannot be read: \(error)"))
        }
        guard let header = rows.first else {
            return .failure(Problem(message: "has no header row; the first line must name the columns, e.g. prompt,mood", line: 1, column: 1))
        }
        let records = Array(rows.dropFirst())
        for record in records where record.count != header.count {
            let start = record[0]
            return .failure(Problem(message: "this row has \(record.count) value\(record.count == 1 ? "" : "s"); the header names \(header.count) column\(header.count == 1 ? "" : "s"); quote values that contain commas", line: start.line, column: start.column))
        }
        return .success(CSVTable(header: header, records: records))
    }

    /// The position of the first byte that is not UTF-8, counting lines and characters before it.
    static func firstInvalidUTF8(_ bytes: ArraySlice<UInt8>) -> (offset: Int, line: Int, column: Int)? {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = bytes.startIndex
        var line = 1
        var column = 1
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                offset += UTF8.width(scalar)
                let crlf = scalar == "\r" && offset < bytes.endIndex && bytes[offset] == 0x0A
                if scalar == "\n" || (scalar == "\r" && !crlf) {
                    line += 1
                    column = 1
                } else if scalar != "\r" {
                    column += 1
                }
            case .emptyInput:
                return nil
            case .error:
                return (offset, line, column)
            }
        }
    }
}

/// Walks CSV text one Unicode scalar at a time, keeping the line and column of each value.
private struct CSVScanner {
    struct Scanned {
        var field: CSVTable.Field
        var wasQuoted: Bool
    }

    private var scalars: [Unicode.Scalar]
    private var index = 0
    private var line = 1
    private var column = 1

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    private var current: Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    private mutating func advance() {
        let scalar = scalars[index]
        index += 1
        // A line ends at LF, CRLF or a lone CR: CR counts as the end unless an LF follows (which then does).
        if scalar == "\n" || (scalar == "\r" && current != "\n") {
            line += 1
            column = 1
        } else if scalar != "\r" {
            column += 1
        }
    }

    /// True at a line end (`\n`, `\r\n` or a lone `\r`), which is consumed.
    private mutating func takeLineEnd() -> Bool {
        guard let scalar = current else { return false }
        if scalar == "\n" {
            advance()
            return true
        }
        if scalar == "\r" {
            advance()
            if current == "\n" { advance() }
            return true
        }
        return false
    }

    /// The next row's values; nil at the end of the text.
    mutating func nextRow() throws -> [Scanned]? {
        guard current != nil else { return nil }
        var row: [Scanned] = []
        while true {
            row.append(try nextField())
            if current == "," {
                advance()
                continue
            }
            if current == nil || takeLineEnd() { return row }
        }
    }

    private mutating func nextField() throws -> Scanned {
        let (startLine, startColumn) = (line, column)
        var text = String.UnicodeScalarView()
        if current == "\"" {
            advance()
            while true {
                guard let scalar = current else {
                    throw CSVTable.Problem(message: "a quoted value that starts here never closes; end it with \"", line: startLine, column: startColumn)
                }
                advance()
                if scalar == "\"" {
                    if current == "\"" {
                        advance()
                        text.append("\"")
                        continue
                    }
                    if let next = current, next != ",", next != "\n", next != "\r" {
                        throw CSVTable.Problem(message: "text after a closing quote; a quote inside a quoted value is written twice (\"\")", line: line, column: column)
                    }
                    break
                }
                text.append(scalar)
            }
            return Scanned(field: .init(text: String(text), line: startLine, column: startColumn), wasQuoted: true)
        }
        while let scalar = current, scalar != ",", scalar != "\n", scalar != "\r" {
            if scalar == "\"" {
                throw CSVTable.Problem(message: "a quote inside an unquoted value; quote the whole value and write the quote twice: \"say \"\"hi\"\"\"", line: line, column: column)
            }
            text.append(scalar)
            advance()
        }
        return Scanned(field: .init(text: String(text), line: startLine, column: startColumn), wasQuoted: false)
    }
}
